"""ASGI middleware of the web process, one small class per module."""
