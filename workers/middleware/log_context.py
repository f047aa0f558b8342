"""Sets the log context (request id, message id) of the message a worker thread is running."""

from __future__ import annotations

import dramatiq

from core import context


class LogContext(dramatiq.Middleware):
    """Copies the message's `request_id` option into core.context for the duration of the message."""

    def before_process_message(self, broker: dramatiq.Broker, message: dramatiq.MessageProxy) -> None:
        context.request_id.set(message.options.get("request_id"))
        context.subject.set(None)

    def after_process_message(
        self, broker: dramatiq.Broker, message: dramatiq.MessageProxy, *, result: object = None, exception: BaseException | None = None
    ) -> None:
        context.request_id.set(None)
        context.subject.set(None)

    after_skip_message = after_process_message
