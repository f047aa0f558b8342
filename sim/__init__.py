"""Local simulators of Loket's upstream providers (Digiflazz buyer API), for offline demo, tests and benchmarks."""
