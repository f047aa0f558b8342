"""Plumbing for background work: the broker, its middleware, enqueueing, the clock."""
