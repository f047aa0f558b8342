"""Sets the garbage collector of each worker process for a long run (core.heap) once it has booted."""

from __future__ import annotations

import dramatiq

from core import heap


class SettledHeap(dramatiq.Middleware):
    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        heap.settle()
