"""The dashboard's Connections search on a large app, on a private redis-server (not a test):

    .venv/bin/python -m bench.dashboard_connections [--connections 10000] [--revoked 0.1] [--repeat 5]
        [--json bench/results/dashboard_connections.json]

Registers `--connections` vehicles and connects each to one app (a user each; `--revoked` of them then revoked),
then times `connection_search.search()` (what the page awaits before rendering) for an unfiltered first and last
page, a user's id, a VIN, a permission, a powertrain and the revoked ones: the median and the worst of `--repeat`
runs each, in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.results import write_results
from bench.workload import plain_fleet
from schemas.application import AppMode
from services.http.dashboard.connection_search import PAGE_SIZE, ConnectionQuery, search
from services.keyspace import Keys
from services.local_redis import start_redis_server
from services.redis_client import connect
from services.registry import AppStore, Authorization, ConnectService, Registry
from services.registry.store import chunked


async def fill(registry: Registry, count: int, revoked: float) -> tuple[str, str]:
    """The app, and one of its vehicles' VIN."""
    app = (await AppStore(registry.redis, registry.keys).create("Big fleet", [], AppMode.TEST)).app
    fleet = plain_fleet(count, random.Random(5))
    await registry.add_vehicles(fleet)
    service = ConnectService(registry)
    made = []
    for chunk in chunked(fleet):
        authorizations = [Authorization(v.id, scope="read_odometer read_location", user_id=f"user-{v.id}")
                          for v in chunk]  # fmt: skip
        made += await service.authorize_many(authorizations, app_id=app.id)
    for connection in made[: int(count * revoked)]:
        await service.revoke(connection.id)
    return app.id, fleet[count // 2].vin


async def measure(args: argparse.Namespace, directory: Path) -> dict[str, Any]:
    server = start_redis_server(directory)
    client = connect(server.url)
    try:
        registry = Registry(client, Keys("dashbench"))
        app_id, vin = await fill(registry, args.connections, args.revoked)
        last = -(-args.connections // PAGE_SIZE)
        queries = {
            "first page": {},
            "last page": {"page": str(last)},
            "a user": {"q": "user-veh-000042"},
            "a VIN": {"q": vin},
            "a permission": {"permission": "read_location"},
            "a powertrain": {"powertrain": "BEV"},
            "revoked": {"status": "revoked"},
        }
        timings: dict[str, Any] = {}
        for name, params in queries.items():
            query = ConnectionQuery.parse(params)
            runs, found = [], 0
            for _ in range(args.repeat):
                started = time.perf_counter()
                found = (await search(registry, app_id, query)).total
                runs.append(1000 * (time.perf_counter() - started))
            timings[name] = {"median ms": statistics.median(runs), "max ms": max(runs), "matching": found}
        return {"connections": args.connections, "revoked share": args.revoked, "timings": timings}
    finally:
        await client.aclose()
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--revoked", type=float, default=0.1)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", type=Path, default=Path("bench/results/dashboard_connections.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fleetgate-dashbench-") as directory:
        results = asyncio.run(measure(args, Path(directory)))
    print(f"{args.connections:,} connections ({args.revoked:.0%} revoked)")
    print(f"{'search':14s} {'matching':>9s} {'median ms':>10s} {'max ms':>8s}")
    for name, t in results["timings"].items():
        print(f"{name:14s} {t['matching']:>9,d} {t['median ms']:>10.1f} {t['max ms']:>8.1f}")
    write_results(args.json, results)


if __name__ == "__main__":
    main()
