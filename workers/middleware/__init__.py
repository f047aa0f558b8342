"""Loket's Dramatiq middleware, one small class per module."""
