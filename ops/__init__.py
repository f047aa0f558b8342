"""Running Loket's processes: the local stack used by `make run`, the tests and the benchmark."""
