"""`fleetgate loadtest`: set up a fleet and its owners, run open-loop load through the gatekeeper and the vehicles,
account for every request and every response, and report.

    start: note the gatekeepers and vehicles services already running on the prefix (they would share the load)
    setup: the run's app (simulator/cleanup.py), its fleet (`lt-...`) -> registry, the app's config and filters
           published, owners connect to the app   (timed: `setup_s`)
    load:  producers (processes) -> {prefix}:requests -> gatekeeper -> {prefix}:decisions -> accountant
                                              vehicles service (ALLOWED ones) -> {prefix}:responses -> accountant
           (with shards: each vehicle's shard's streams; the accountants read every shard's)
           owners revoke and re-auth on schedule, meanwhile
    drain: until every request is decided and every ALLOWED one answered, or the grace period ends
    clean: with `cleanup`, delete what the run created (never the streams' entries)

The run never touches another application's config, filters or connections, nor vehicles outside its fleet.
"""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from schemas.access import derive
from schemas.decision import rfc3339
from schemas.grant import ConnectionFilters
from services.keyspace import Keys
from services.redis_client import Client, client_for, refuse_eviction
from services.registry import ConnectService, Registry
from services.settings import Settings
from services.streams import ensure_group, live_consumers
from simulator.accounting import Accountant, Sent
from simulator.cleanup import LOADTEST_APP_ID, LOADTEST_VEHICLE_PREFIX, Removed, ensure_app, remove_run
from simulator.effects import default_rules
from simulator.errors import LoadTestError
from simulator.fleet import FleetMix, fleet_ids, generate_fleet
from simulator.owners import OwnerBehaviour, apply_change, connect_owners, default_app_config, plan_changes
from simulator.processes import (
    Producers,
    start_gatekeepers,
    start_vehicles,
    stop_service,
    wait_for_heartbeats,
)
from simulator.producer import ProducerDone, ProducerJob, ProducerReady
from simulator.readers import Entries, account_decisions, account_responses, read_stream
from simulator.report import LoadReport, RunSettings, Throughput
from simulator.report_html import render_html
from simulator.response_accounting import ResponseAccountant
from simulator.running import Running, find_running, sharing_warnings
from simulator.workload import WorkloadMix
from simulator.world import World

HELD_BEHIND_S = 1.0


@dataclass(frozen=True)
class LoadTestOptions:
    redis_url: str
    prefix: str
    vehicles: int
    rate: float
    duration_s: float
    producers: int = 1
    seed: int = 1
    gatekeepers: int = 1
    """Worker processes to start; 0 uses a gatekeeper that is already running on the prefix."""
    vehicle_services: int = 1
    """Vehicles service processes to start; 0 uses one that is already running on the prefix."""
    grace_s: float = 15.0
    mix: FleetMix | None = None
    owners: OwnerBehaviour = field(default_factory=OwnerBehaviour)
    workload: WorkloadMix = field(default_factory=WorkloadMix)
    shards: int = 1
    redis_cluster: bool = False
    """`redis_url` is a node of a Redis Cluster."""
    app_id: str = LOADTEST_APP_ID
    """The run's own application (created, or reused as it is): its config and filters are the run's."""
    id_prefix: str = LOADTEST_VEHICLE_PREFIX
    """The fleet's vehicle ids start with this (`fleetgate simulate fleet` uses `sim-`)."""
    filters: ConnectionFilters = field(default_factory=ConnectionFilters)
    """The run's app's Connection Filters (none by default: every vehicle connects)."""
    cleanup: bool = False
    """After the run, delete what it created (simulator/cleanup.py); never the streams' entries."""

    @property
    def keys(self) -> Keys:
        return Keys(self.prefix, self.shards)

    @property
    def settings(self) -> Settings:
        """The settings of the gatekeepers and vehicles the load test starts (and of its own client)."""
        return Settings(
            redis_url=self.redis_url, key_prefix=self.prefix, shards=self.shards, redis_cluster=self.redis_cluster
        )

    def client(self) -> Client:
        return client_for(self.settings)


@dataclass
class Progress:
    """What the live display shows, updated twice a second."""

    phase: str
    elapsed_s: float = 0.0
    sent: int = 0
    decided: int = 0
    answered: int = 0
    sent_per_s: float = 0.0
    decided_per_s: float = 0.0
    outcomes: dict[str, int] = field(default_factory=dict)

    @property
    def lag(self) -> int:
        return max(0, self.sent - self.decided)


async def run_load_test(
    options: LoadTestOptions,
    on_progress: Callable[[Progress], None],
    on_warning: Callable[[str], None] = lambda _warning: None,
) -> LoadReport:
    """Run the load test; warn (`on_warning`) about processes found running that will share the load, and record
    them in the report. With `options.cleanup`, delete what the run created afterwards, even when it failed."""
    redis = options.client()
    keys = options.keys
    run_id = secrets.token_hex(3)
    gatekeepers: list[subprocess.Popen[bytes]] = []
    vehicles: list[subprocess.Popen[bytes]] = []
    world: World | None = None
    unreadable: list[str] = []  # filled by the load: the ids of the unreadable requests it sent
    clock_existed = True
    report: LoadReport | None = None
    try:
        await refuse_eviction(redis, options.settings)
        running = await find_running(redis, keys)
        for warning in sharing_warnings(options.prefix, options.gatekeepers, options.vehicle_services, running):
            on_warning(warning)
        clock_existed = bool(await redis.exists(keys.vehicles_clock))
        if options.gatekeepers:
            gatekeepers.append(start_gatekeepers(options.settings, options.gatekeepers))
        if options.vehicle_services:
            for shard in keys.all_shards:  # its vehicles answer from this load on, not an older backlog
                await ensure_group(redis, shard.decisions, options.settings.vehicles_group, "$")
            vehicles += [start_vehicles(options.settings) for _ in range(options.vehicle_services)]
        on_progress(Progress("setting up the fleet and its owners"))
        setup_started = time.perf_counter()
        world = await set_up(redis, keys, options)
        setup_s = time.perf_counter() - setup_started
        if gatekeepers:
            await wait_for_heartbeats(redis, keys, options.gatekeepers, gatekeepers, besides=running.gatekeeper_names)
        elif not await live_consumers(redis, keys):
            raise LoadTestError(f"no gatekeeper is running on prefix {options.prefix!r}: start one, or drop the flag")
        if vehicles:
            await wait_for_heartbeats(
                redis, keys, options.vehicle_services, vehicles, vehicles=True, besides=running.vehicles_names
            )
        elif not await live_consumers(redis, keys, prefix=keys.vehicles_heartbeat_prefix):
            raise LoadTestError(f"no vehicles service is running on prefix {options.prefix!r}: start one, or drop "
                                "the flag")  # fmt: skip
        report = await _load(
            redis,
            keys,
            options,
            world,
            run_id=run_id,
            running=running,
            setup_s=setup_s,
            on_progress=on_progress,
            unreadable=unreadable,
        )
    finally:
        try:
            await asyncio.gather(*(stop_service(child) for child in gatekeepers + vehicles))
            if options.cleanup:
                on_progress(Progress("cleaning up"))
                await _clean_up(redis, keys, options, world, run_id, unreadable, clock_existed=clock_existed)
        finally:
            await redis.aclose()
    assert report is not None  # else the exception raised in `try` is on its way
    return report.model_copy(update={"run": report.run.model_copy(update={"cleaned_up": options.cleanup})})


async def _clean_up(  # noqa: PLR0917  # the run's parts, each passed once
    redis: Client,
    keys: Keys,
    options: LoadTestOptions,
    world: World | None,
    run_id: str,
    unreadable: list[str],
    *,
    clock_existed: bool,
) -> Removed:
    """Delete what the run created; the simulated vehicles' clock too when the run's vehicles service set it and
    no other vehicles service is left using it."""
    vehicles_left = await live_consumers(redis, keys, prefix=keys.vehicles_heartbeat_prefix)
    clock = [] if clock_existed or vehicles_left else [keys.vehicles_clock]
    connections = None if world is None else [v.connection_id for v in world.vehicles if v.connection_id]
    return await remove_run(
        Registry(redis, keys),
        options.app_id,
        fleet_ids(options.vehicles, options.id_prefix),
        connections,
        run_id=run_id,
        unreadable_ids=unreadable,
        extra_keys=clock,
    )


async def set_up(redis: Client, keys: Keys, options: LoadTestOptions) -> World:
    """The run's app (with its config and filters), its fleet, and its owners connected to the app."""
    registry = Registry(redis, keys)
    app_id = await ensure_app(registry, options.app_id)
    fleet = generate_fleet(options.vehicles, options.seed, options.mix, id_prefix=options.id_prefix)
    await registry.add_vehicles(fleet)
    config = await registry.publish_config(default_app_config(), app_id=app_id)
    await registry.set_filters(options.filters, app_id)
    world = await connect_owners(registry, fleet, options.owners, options.seed, app_id)
    return plan_changes(world, derive(config), options.owners, options.duration_s, options.seed)


async def _load(
    redis: Client,
    keys: Keys,
    options: LoadTestOptions,
    world: World,
    *,
    run_id: str,
    running: Running,
    setup_s: float,
    on_progress: Callable[..., None],
    unreadable: list[str],
) -> LoadReport:
    group = f"loadtest-{run_id}"
    streams = [stream for shard in keys.all_shards for stream in (shard.decisions, shard.responses)]
    for stream in streams:
        await redis.xgroup_create(stream, group, id="$", mkstream=True)
    jobs = [
        ProducerJob(options.redis_url, options.prefix, options.shards, options.redis_cluster, n,
                    options.rate / options.producers, options.duration_s, options.seed, run_id, world,
                    options.workload)
        for n in range(options.producers)
    ]  # fmt: skip
    producers = Producers(jobs)
    stop_reading = asyncio.Event()
    background: list[asyncio.Task[None]] = []
    try:
        on_progress(Progress(f"starting {len(jobs)} producer process(es)"))
        await _until_ready(producers, len(jobs))
        started_at = time.time() + 0.1
        producers.start(started_at)
        accountant = Accountant(world, started_at)
        responses = ResponseAccountant(accountant, default_rules())
        samples: dict[str, str] = {}

        def decisions(entries: Entries, read_at: float) -> None:
            account_decisions(entries, accountant, read_at, samples, responses)

        def answers(entries: Entries, read_at: float) -> None:
            account_responses(entries, responses, read_at)

        background = [
            asyncio.create_task(_owner_changes(Registry(redis, keys), world, started_at, accountant)),
            *(asyncio.create_task(read_stream(redis, shard.decisions, group, decisions, stop_reading))
              for shard in keys.all_shards),
            *(asyncio.create_task(read_stream(redis, shard.responses, group, answers, stop_reading))
              for shard in keys.all_shards),
        ]  # fmt: skip
        try:
            done = await _follow(producers, accountant, responses, options, started_at, on_progress)
        finally:
            unreadable += accountant.unreadable_ids()
    finally:
        stop_reading.set()
        for task in background[:1]:
            task.cancel()  # the owners' changes; the readers stop on `stop_reading`, after their last read
        await asyncio.gather(*background, return_exceptions=True)
        producers.stop()
        for stream in streams:
            await redis.xgroup_destroy(stream, group)
    return _report(
        options, world, running, accountant, responses, done, setup_s=setup_s, started_at=started_at, samples=samples
    )


async def _until_ready(producers: Producers, count: int) -> None:
    ready: set[int] = set()
    deadline = time.monotonic() + 120
    while len(ready) < count:
        while not producers.queue.empty():
            item = producers.queue.get_nowait()
            if isinstance(item, ProducerReady):
                ready.add(item.index)
        if producers.failed():
            raise LoadTestError("a producer process failed to start; see its traceback above")
        if time.monotonic() > deadline:
            raise LoadTestError(f"only {len(ready)} of {count} producers started within 120 s")
        await asyncio.sleep(0.02)


async def _follow(  # noqa: PLR0917  # the load's parts, each passed once, in order
    producers: Producers,
    accountant: Accountant,
    responses: ResponseAccountant,
    options: LoadTestOptions,
    started_at: float,
    on_progress: Callable[[Progress], None],
) -> list[ProducerDone]:
    """Until every producer is done, every request decided and every ALLOWED one answered (or the grace period is
    over); report progress."""
    done: list[ProducerDone] = []
    progress = Progress("load")
    last_tick, last_sent, last_decided = time.time(), 0, 0
    drain_deadline: float | None = None
    while True:
        _drain_queue(producers.queue, accountant, done)
        now = time.time()
        if len(done) == len(producers.processes) and drain_deadline is None:
            drain_deadline = now + options.grace_s
            progress.phase = "draining"
        settled = accountant.pending == 0 and responses.pending == 0
        if drain_deadline is not None and (settled or now > drain_deadline):
            return done
        if producers.failed():
            raise LoadTestError("a producer process failed; see its traceback above")
        if now - last_tick >= 0.5:
            progress.elapsed_s = max(0.0, now - started_at)
            progress.sent, progress.decided, progress.answered = accountant.sent, accountant.decided, responses.read
            progress.sent_per_s = (accountant.sent - last_sent) / (now - last_tick)
            progress.decided_per_s = (accountant.decided - last_decided) / (now - last_tick)
            progress.outcomes = dict(accountant.outcomes)
            last_tick, last_sent, last_decided = now, accountant.sent, accountant.decided
            on_progress(progress)
        await asyncio.sleep(0.02)


def _drain_queue(queue: Any, accountant: Accountant, done: list[ProducerDone]) -> None:
    while not queue.empty():
        item = queue.get_nowait()
        if isinstance(item, ProducerDone):
            done.append(item)
        else:
            accountant.on_sent(cast("list[Sent]", item))


async def _owner_changes(registry: Registry, world: World, started_at: float, accountant: Accountant) -> None:
    """Make each owner's change at its time, telling the accountant when it was really made (it may run late)."""
    connect = ConnectService(registry)
    for change in world.changes:
        await asyncio.sleep(max(0.0, started_at + change.at_s - time.time()))
        accountant.change_started(change.connection_id, time.time())
        await apply_change(connect, change)
        accountant.change_finished(change.connection_id, time.time())


def _report(  # noqa: PLR0917  # what the run was given, found and measured, each passed once
    options: LoadTestOptions,
    world: World,
    running: Running,
    accountant: Accountant,
    responses: ResponseAccountant,
    done: list[ProducerDone],
    *,
    setup_s: float,
    started_at: float,
    samples: dict[str, str],
) -> LoadReport:
    accounting = accountant.accounting()
    behind = max((d.behind_s for d in done), default=0.0)
    timeline = accountant.timeline()
    load_seconds = [s for s in timeline if s.t < options.duration_s]
    decided_in_load = sum(s.decided for s in load_seconds)
    return LoadReport(
        run=RunSettings(
            vehicles=options.vehicles,
            connected=sum(1 for v in world.vehicles if v.connection_id is not None),
            app_id=options.app_id,
            rate=options.rate,
            duration_s=options.duration_s,
            producers=options.producers,
            seed=options.seed,
            gatekeepers=options.gatekeepers,
            vehicle_services=options.vehicle_services,
            gatekeepers_found=running.gatekeepers,
            vehicle_services_found=running.vehicle_services,
            started_at=rfc3339(datetime.fromtimestamp(started_at, UTC)),
        ),
        throughput=Throughput(
            setup_s=setup_s,
            sent=accounting.requests,
            sent_per_s=accounting.requests / options.duration_s,
            duplicates_sent=sum(d.duplicates for d in done),
            decided=accounting.decided,
            decided_per_s=decided_in_load / options.duration_s,
            producer_behind_s=behind,
            rate_held=behind < HELD_BEHIND_S,
        ),
        latency_ms=accountant.latency_summary(),
        outcomes=dict(accountant.outcomes.most_common()),
        by_powertrain={k: dict(v) for k, v in sorted(accountant.by_powertrain.items())},
        by_make={k: dict(v) for k, v in sorted(accountant.by_make.items())},
        not_capable_by_target=accountant.capability_by_target(),
        timeline=responses.timeline(timeline),
        accounting=accounting,
        responses=responses.report(),
        sample_decisions=[samples[o] for o in sorted(samples)],
    )


def write_report(report: LoadReport, directory: Path) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    data, page = directory / "report.json", directory / "report.html"
    data.write_text(report.model_dump_json(indent=2) + "\n")
    page.write_text(render_html(report))
    return data, page
