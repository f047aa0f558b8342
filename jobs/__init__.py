"""Dramatiq actors, one module per domain. Each actor is a thin wrapper over an async function."""
