"""A master killed mid-run: the replica takes over, the run finishes, and nothing is lost end to end.

The figures (lost, vanished, seen twice) depend on timing and are reported, not pinned; what is asserted is what
holds whatever the timing: every acknowledged request ends up with exactly one decision in the streams, after
replaying what the accounting says got none, and with WAIT-backed producer writes without any replay.
"""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from devtools.failover import FailoverOutcome, run_failover
from devtools.local_cluster import RedisClusterProcesses

pytestmark = [
    pytest.mark.timeout(180),
    # redis-py's cluster client forgets the node object of a master that left the topology without closing its
    # connections: their finalizers warn (ResourceWarning), at whatever moment the garbage collector runs them.
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]


def report(outcome: FailoverOutcome) -> None:
    gc.collect()  # run those finalizers now, while this module's warning filters apply (not at session end)
    print("\n" + "\n".join(f"{name:<42} {value}" for name, value in outcome.table()))


async def test_plain_writes_lose_the_window_and_replay_recovers_it(
    disposable_cluster: RedisClusterProcesses, tmp_path: Path
) -> None:
    """A replica cut off half a second before the kill: that half second's requests and decisions are lost with
    the master; the lost decisions' requests are decided again, and replaying the lost requests decides the rest."""
    outcome = await run_failover(disposable_cluster, replica_lag_s=0.5, log=tmp_path / "worker.log")
    report(outcome)
    assert outcome.requests == 12_000
    assert outcome.unreplicated_bytes > 0
    assert outcome.lost_requests > 0  # the window is real: acknowledged requests are gone
    assert outcome.decided_after_replay == outcome.requests
    assert outcome.duplicated_in_streams == 0
    # A decision a live consumer saw and then lost was made again: that request was seen decided twice.
    assert outcome.seen_twice == outcome.vanished_decisions


async def test_wait_backed_writes_lose_no_request(disposable_cluster: RedisClusterProcesses, tmp_path: Path) -> None:
    """The same replica cut off, but a request counts as sent only once WAIT says the replica has it."""
    outcome = await run_failover(disposable_cluster, wait_backed=True, replica_lag_s=0.5, log=tmp_path / "worker.log")
    report(outcome)
    assert outcome.requests == 12_000
    assert outcome.unreplicated_bytes > 0
    assert outcome.lost_requests == 0
    assert outcome.decided_after_replay == outcome.requests
    assert outcome.duplicated_in_streams == 0
