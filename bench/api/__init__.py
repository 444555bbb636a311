"""The vehicle API benchmark (`python -m bench.api`): see run.py."""
