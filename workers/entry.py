"""What `dramatiq workers.entry` loads: the broker from settings, then every actor."""

import asyncio

import uvloop

from core.logs import setup_logging
from core.settings import get_settings
from workers.broker import setup_broker

# Before the AsyncIO middleware creates the event loop the async actors run on: uvloop's
# transports cost far less CPU per database, Redis and HTTP round trip than asyncio's selector loop.
asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
setup_logging(get_settings().log_level)
broker = setup_broker(get_settings())

import jobs.callbacks  # noqa: E402,F401
import jobs.photos  # noqa: E402,F401
import jobs.purchases  # noqa: E402,F401  (declares actors on the broker above)
import jobs.qris  # noqa: E402,F401
import jobs.webhook_events  # noqa: E402,F401
