"""The dashboard's Advice and What-if pages at fleet scale, on a private redis-server (not a test):

    .venv/bin/python -m bench.dashboard_insights [--vehicles 100000] [--connections 3000]

bench.whatif's world (the simulator's seeded fleet, an app with the simulator's config, connections whose owners
unchecked some optional permissions, seven days of busy hourly usage buckets), then each page fetched whole
through the app in-process (httpx over ASGI, a signed-in session): the median wall seconds of 5, for the page as a
browser gets it (what-if or advice, and the rendering).
"""

from __future__ import annotations

import argparse
import secrets
import time
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from bench.private_server import on_private_server
from bench.results import write_results
from bench.whatif import APP, ROUNDS, build, fill_buckets, timed
from services.http import HttpContext, create_app
from services.http.dashboard.session import COOKIE, sign_session
from services.local_redis import RedisServer
from services.redis_client import connect
from services.registry import Registry
from services.settings import Settings
from simulator.accounts import SimulatorAccounts

ORIGIN = "http://bench.test"


async def measure(server: RedisServer, args: argparse.Namespace) -> dict[str, Any]:
    secret = secrets.token_urlsafe(32)
    settings = Settings(redis_url=server.url, key_prefix="bench", dashboard_secret=SecretStr(secret))
    redis = connect(server.url)
    registry = Registry(redis, settings.keys)
    try:
        fleet, connected = await build(registry, args.vehicles, args.connections, args.seed)
        await fill_buckets(redis, settings, fleet, connected)
        app = create_app(HttpContext(settings, redis, registry, SimulatorAccounts(registry)))
        cookie = sign_session(secret.encode(), APP, int(time.time()) + 3600)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=ORIGIN, cookies={COOKIE: cookie}) as http:

            async def fetch(path: str) -> None:
                response = await http.get(f"/dashboard/apps/{APP}{path}")
                if response.status_code != 200:
                    raise SystemExit(f"{path}: HTTP {response.status_code}")

            whatif_wall, _ = await timed(ROUNDS, lambda: fetch("/access/whatif"))
            advice_wall, _ = await timed(ROUNDS, lambda: fetch("/advice?since=7d"))
        return {
            "vehicles": len(fleet),
            "connections": len(connected),
            "what-if page s (median of 5)": whatif_wall,
            "advice 7d page s (median of 5)": advice_wall,
        }
    finally:
        await redis.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vehicles", type=int, default=100_000)
    parser.add_argument("--connections", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, default=Path("bench/results/dashboard_insights.json"))
    args = parser.parse_args()
    results = on_private_server(lambda server: measure(server, args))
    for name, value in results.items():
        print(f"{name:<45} {value:>12,.3f}")
    write_results(args.json, results)


if __name__ == "__main__":
    main()
