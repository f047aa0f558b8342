"""The garbage collector set for a long-running server process (the web, each worker process).

CPython's defaults collect the young generation every 700 net allocations and the whole heap,
every tracked object, whenever the old generation has grown by a quarter. Measured in the web
process at load (the benchmark's accepts with the workers paused, ~22 s): 14 full collections
took 1,046 ms, up to 120 ms each with the event loop standing still (the accepts' p99 was
~100 ms), and 1,784 young ones another 0.6 s. With settle() after start-up, in the same load:
11 young collections (2 ms in all) and no full one beyond settle()'s own (67 ms, at start-up).
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000
"""Net allocations between young collections: a request's objects mostly die by reference
counting long before that, so a collection finds few survivors to scan and promote."""


def settle() -> None:
    """Call once start-up is done: collect, then freeze what is left (modules, settings, the
    engine and its pool) so that no later collection walks it, and space collections out.
    Reference cycles made later are still collected, only less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, 20, 20)
