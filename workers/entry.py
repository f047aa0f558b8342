"""What `dramatiq workers.entry` loads: the broker from settings, then every actor."""

from core.logs import setup_logging
from core.settings import get_settings
from workers.broker import setup_broker

setup_logging(get_settings().log_level)
broker = setup_broker(get_settings())

import jobs.callbacks  # noqa: E402,F401
import jobs.photos  # noqa: E402,F401
import jobs.purchases  # noqa: E402,F401  (declares actors on the broker above)
import jobs.qris  # noqa: E402,F401
import jobs.webhook_events  # noqa: E402,F401
