"""What an app's decisions and the registered fleet say about its Vehicle Access: least-privilege advice and what-if.

- `usage.py`: the usage consumer, a group on every shard's decisions stream that counts each app's decisions in
  hourly buckets (`counts.py` says what is counted and how a bucket's fields are spelt).
- `advice.py`: per permission the app requests, its use over a window, what is unused, what owners unchecked.
- `whatif.py`: a config before publishing, against the registered fleet (`fleet.py` reads it) and the app's
  connections (`grants.py`).

Each answer is a dataclass with `to_json()`: the shape `fleetgate access advise|whatif --json` prints, and what a
page renders.
"""
