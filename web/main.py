"""The ASGI entry point: `uvicorn web.main:app`."""

from core.logs import setup_logging
from core.settings import get_settings
from web.app import create_app

setup_logging(get_settings().log_level)
app = create_app(get_settings())
