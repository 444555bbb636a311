"""Tooling that tests and benchmarks share, never installed: builders, local Redis clusters, fault scenarios.

Not in the wheel nor the image (pyproject.toml packages only `schemas`, `services`, `simulator`, `fleetgate`).
Imports point one way: tests and benchmarks import this package, never the other way round, and nothing
installed imports it.
"""
