"""The v2 vehicle endpoints with the official smartcar SDK, through the whole pipeline (the test's server, a
gatekeeper and a vehicles service): every Vehicle method's typed result with meta, PERMISSION, VEHICLE_NOT_CAPABLE
and VEHICLE_STATE errors, imperial units, batch, commands read back, API versions, and HTTP agreeing with the
streams."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any, cast

import httpx
import pytest
import smartcar
from redis.asyncio import Redis

from devtools.builders import make_vehicle
from schemas.powertrain import Powertrain
from simulator.vehicles.faults import Fault
from simulator.vehicles.store import update_faults
from tests.http.oauth.conftest import CONTROLS, READS, OAuthWorld, connected, sdk

pytestmark = pytest.mark.redis


async def raises(call: Callable[[], object]) -> smartcar.SmartcarException:
    try:
        await sdk(call)
    except smartcar.SmartcarException as exc:
        return exc
    raise AssertionError("no SmartcarException")


@pytest.mark.usefixtures("running")
async def test_every_read_method_returns_its_typed_result_with_meta(world: OAuthWorld) -> None:
    """Each v2 read of the SDK on a BEV (and fuel and engine oil on an ICE) returns its fields, with meta."""
    bev = await connected(world, Powertrain.BEV, "bev-1", READS)
    attributes = await sdk(bev.attributes)
    assert (attributes.id, attributes.make, attributes.model, attributes.year) == ("bev-1", "Tesla", "Model 3", 2022)
    assert len((await sdk(bev.vin)).vin) == 17
    odometer = await sdk(bev.odometer)
    assert odometer.distance > 0
    assert odometer.meta.unit_system == "metric"
    assert uuid.UUID(odometer.meta.request_id)
    assert odometer.meta.data_age is not None
    assert odometer.meta.fetched_at is not None
    location = await sdk(bev.location)
    assert -90 <= location.latitude <= 90
    battery = await sdk(bev.battery)
    assert 0 <= battery.percent_remaining <= 1
    assert battery.range > 0
    assert (await sdk(bev.battery_capacity)).capacity > 0
    nominal = await sdk(bev.nominal_capacity)
    assert nominal.availableCapacities
    assert nominal.capacity["nominal"] > 0
    charge = await sdk(bev.charge)
    assert isinstance(charge.is_plugged_in, bool)
    assert charge.state in {"CHARGING", "NOT_CHARGING", "FULLY_CHARGED"}
    assert 0.5 <= (await sdk(bev.get_charge_limit)).limit <= 1
    tires = await sdk(bev.tire_pressure)
    assert min(tires.front_left, tires.front_right, tires.back_left, tires.back_right) > 100  # kPa
    lock_status = await sdk(bev.lock_status)
    assert isinstance(lock_status.is_locked, bool)
    assert len(lock_status.doors) == 4
    history = await sdk(bev.service_history)
    assert history.items
    first = history.items[0]["serviceDate"][:10]
    one_day = (await sdk(lambda: bev.service_history(first, first))).items
    assert [r["serviceId"] for r in one_day] == [history.items[0]["serviceId"]]
    assert (await sdk(lambda: bev.service_history("1990-01-01", "1990-12-31"))).items == []
    assert {"serviceId", "serviceDate", "odometerDistance", "serviceTasks"} <= set(history.items[0])
    systems = await sdk(bev.diagnostic_system_status)
    assert {s.system_id for s in systems.systems} >= {"SYSTEM_ABS", "SYSTEM_EV_HV_BATTERY"}
    assert isinstance((await sdk(bev.diagnostic_trouble_codes)).active_codes, list)
    raw = await sdk(lambda: bev.request("GET", "odometer"))
    assert raw.body["distance"] == pytest.approx(odometer.distance, abs=5)
    ice = await connected(world, Powertrain.ICE, "ice-1", READS)
    fuel = await sdk(ice.fuel)
    assert fuel.range > 0
    assert 0 <= fuel.percent_remaining <= 1
    assert fuel.amount_remaining > 0
    assert 0 <= (await sdk(ice.engine_oil)).life_remaining <= 1


@pytest.mark.usefixtures("running")
async def test_commands_change_what_the_next_read_says(world: OAuthWorld) -> None:
    """lock then lock_status says locked, unlock unlocked; set_charge_limit(0.7) reads back 0.7."""
    bev = await connected(world, Powertrain.BEV, "bev-1", f"{READS} {CONTROLS}")
    done = await sdk(bev.lock)
    assert (done.status, done.message) == ("success", "Successfully sent request to vehicle")
    assert (await sdk(bev.lock_status)).is_locked is True
    await sdk(bev.unlock)
    assert (await sdk(bev.lock_status)).is_locked is False
    await sdk(lambda: bev.set_charge_limit(0.7))
    assert (await sdk(bev.get_charge_limit)).limit == pytest.approx(0.7)
    assert (await sdk(lambda: bev.send_destination(52.52, 13.405))).status == "success"
    # At the tests' simulated hour (devtools.builders.SIM_START, night in Europe) this BEV is plugged in and full.
    refused = await raises(bev.start_charge)
    assert (refused.status_code, refused.type, refused.code) == (409, "VEHICLE_STATE", "FULLY_CHARGED")
    assert (
        refused.description == "The vehicle is unable to perform your request because its EV battery is fully charged."
    )
    assert (await sdk(bev.charge)).is_plugged_in is True
    bad = await raises(lambda: bev.set_charge_limit(0.2))
    assert (bad.status_code, bad.type, bad.code) == (400, "VALIDATION", "PARAMETER")


@pytest.mark.usefixtures("running")
async def test_ungranted_incapable_and_vehicle_state_errors(world: OAuthWorld) -> None:
    """An ungranted permission is PERMISSION 403, fuel on a BEV COMPATIBILITY VEHICLE_NOT_CAPABLE 501, an injected
    ASLEEP VEHICLE_STATE 409 and a rate limit 429 with retry_after: Smartcar's exact strings."""
    bev = await connected(world, Powertrain.BEV, "bev-1", "read_odometer read_fuel read_battery")
    denied = await raises(bev.location)
    assert (denied.status_code, denied.type, denied.code) == (403, "PERMISSION", None)
    assert denied.resolution == {"type": "REAUTHENTICATE", "url": None}
    assert denied.description.startswith("Your application has insufficient permissions")
    assert denied.doc_url == "https://smartcar.com/docs/errors/api-errors/permission-errors#null"
    incapable = await raises(bev.fuel)
    assert (incapable.status_code, incapable.type, incapable.code) == (501, "COMPATIBILITY", "VEHICLE_NOT_CAPABLE")
    assert incapable.description == "The vehicle is incapable of performing your request."
    await update_faults(
        world.redis,
        world.keys,
        "bev-1",
        lambda f: f.added(Fault(target="odometer-traveleddistance", error="ASLEEP"), 0),
    )
    asleep = await raises(bev.odometer)
    assert (asleep.status_code, asleep.type, asleep.code) == (409, "VEHICLE_STATE", "ASLEEP")
    assert asleep.suggested_user_message.endswith("preserve battery life. ")
    await update_faults(
        world.redis,
        world.keys,
        "bev-1",
        lambda f: f.added(Fault(target="tractionbattery-range", error="RATE_LIMIT/VEHICLE", retry_after_s=30), 0),
    )
    limited = await raises(bev.battery)
    assert (limited.status_code, limited.type, limited.code) == (429, "RATE_LIMIT", "VEHICLE")
    assert limited.retry_after == "30"


@pytest.mark.usefixtures("running")
async def test_imperial_units_convert(world: OAuthWorld) -> None:
    """SC-Unit-System: imperial answers miles and psi, and says so in meta."""
    bev = await connected(world, Powertrain.BEV, "bev-1", READS)
    metric = await sdk(bev.odometer)
    metric_tires = await sdk(bev.tire_pressure)
    bev._unit_system = "imperial"
    imperial = await sdk(bev.odometer)
    assert imperial.meta.unit_system == "imperial"
    assert imperial.distance == pytest.approx(metric.distance / 1.609344, abs=3)
    tires = await sdk(bev.tire_pressure)
    assert tires.front_left == pytest.approx(metric_tires.front_left / 6.894757, abs=0.1)


@pytest.mark.usefixtures("running")
async def test_batch_mixes_200_and_403_items(world: OAuthWorld) -> None:
    """A batch answers each path on its own: a granted one its result, an ungranted one raises 403 when read;
    a bad path fails the whole batch with VALIDATION 400."""
    bev = await connected(world, Powertrain.BEV, "bev-1", "read_odometer read_battery")
    batch = await sdk(lambda: bev.batch(["/odometer", "/location", "/battery", "/"]))
    assert batch.odometer().distance > 0
    assert uuid.UUID(batch.odometer().meta.request_id)
    with pytest.raises(smartcar.SmartcarException) as no_info:
        batch.attributes()  # read_vehicle_info was not granted either
    assert no_info.value.status_code == 403
    assert 0 <= batch.battery().percent_remaining <= 1
    with pytest.raises(smartcar.SmartcarException) as caught:
        batch.location()
    assert (caught.value.status_code, caught.value.type) == (403, "PERMISSION")
    bad = await raises(lambda: bev.batch(["/odometer", "/LOCATIONNNN"]))
    assert (bad.status_code, bad.type) == (400, "VALIDATION")


@pytest.mark.usefixtures("running")
async def test_versions_paths_and_other_vehicles(world: OAuthWorld) -> None:
    """Version 1.0 answers v1 errors (a bad token's and another user's vehicle's too), an unknown version and an
    unknown path 404, another user's vehicle 401."""
    bev = await connected(world, Powertrain.BEV, "bev-1", "read_odometer")
    await world.registry.add_vehicle(make_vehicle(Powertrain.BEV, vehicle_id="bev-2"))
    await world.connect_vehicle("user-2", "bev-2", scope="read_odometer")
    headers = {"Authorization": f"Bearer {bev.access_token}"}
    async with httpx.AsyncClient(base_url=world.base_url, headers=headers) as client:
        ok = await client.get("/v1.0/vehicles/bev-1/odometer")
        assert ok.status_code == 200
        assert ok.json()["distance"] > 0
        v1 = await client.get("/v1.0/vehicles/bev-1/location")
        assert v1.status_code == 403
        assert set(v1.json()) == {"error", "message", "code", "statusCode", "requestId"}
        assert v1.json()["error"] == "permission_error"
        unknown = await client.get("/v9.9/vehicles/bev-1/odometer")
        assert (unknown.status_code, unknown.json()["code"]) == (404, "VERSION")
        assert (await client.get("/v3/vehicles/bev-1/odometer")).status_code == 404  # v3 paths are not v2's
        nowhere = await client.get("/v2.0/vehicles/bev-1/nowhere")
        assert (nowhere.status_code, nowhere.json()["type"]) == (404, "RESOURCE_NOT_FOUND")
        other = await client.get("/v2.0/vehicles/bev-2/odometer")
        assert (other.status_code, other.json()["type"]) == (401, "AUTHENTICATION")
        other_v1 = await client.get("/v1.0/vehicles/bev-2/odometer")
        assert (other_v1.status_code, other_v1.json()["error"]) == (401, "authentication_error")
        bad_token_v1 = await client.get("/v1.0/vehicles/bev-1/odometer", headers={"Authorization": "Bearer nope"})
        assert bad_token_v1.status_code == 401
        assert bad_token_v1.json() == {
            "error": "authentication_error",
            "message": other.json()["description"],
            "code": None,
            "statusCode": 401,
            "requestId": bad_token_v1.headers["sc-request-id"],
        }
        bad_unit = await client.post("/v2.0/vehicles/bev-1/security", content=b"{not json")
        assert bad_unit.status_code == 400


@pytest.mark.usefixtures("running")
async def test_the_streams_agree_with_http(world: OAuthWorld, redis: Redis) -> None:
    """Every pipeline request of an HTTP call has exactly one decision and, when ALLOWED, one response, with the
    HTTP answer's outcome."""
    bev = await connected(world, Powertrain.BEV, "bev-1", "read_odometer read_security control_security")
    headers = {"Authorization": f"Bearer {bev.access_token}"}
    answers: list[httpx.Response] = []
    async with httpx.AsyncClient(base_url=world.base_url, headers=headers) as client:
        for method, path, body in [
            ("GET", "odometer", None),
            ("GET", "location", None),
            ("GET", "fuel", None),
            ("POST", "security", {"action": "LOCK"}),
            ("GET", "security", None),
        ]:
            answers.append(await client.request(method, f"/v2.0/vehicles/bev-1/{path}", json=body))
    decisions = await _messages(redis, world.keys.decisions)
    responses = await _messages(redis, world.keys.shard_of_vehicle("bev-1").responses)
    for answer in answers:
        ids = answer.headers["fleetgate-request-ids"].split(",")
        for request_id in ids:
            decided = [d for d in decisions if d["request_id"] == request_id]
            answered = [r for r in responses if r["request_id"] == request_id]
            assert len(decided) == 1
            assert len(answered) == (1 if decided[0]["outcome"] == "ALLOWED" else 0)
        outcomes = {d["outcome"] for d in decisions if d["request_id"] in ids}
        expected = {200: {"ALLOWED"}, 403: {"PERMISSION_DENIED"}, 501: {"VEHICLE_NOT_CAPABLE"}}
        assert outcomes == expected[answer.status_code]


async def _messages(redis: Redis, stream: str) -> list[dict[str, Any]]:
    entries = cast("list[tuple[bytes, dict[bytes, bytes]]]", await redis.xrange(stream))
    return [json.loads(fields[b"data"]) for _, fields in entries]


@pytest.mark.usefixtures("running")
@pytest.mark.parametrize("http_settings", [{"api_cache_ttl_s": 60}], indirect=True)
async def test_a_connection_revoked_elsewhere_is_refused_at_once_though_remembered(world: OAuthWorld) -> None:
    """The API process remembers the token's grant and the connection (services/http/lookups.py; a minute here); a
    revocation by another process (here the registry on the test's loop) still answers the very next call with
    AUTHENTICATION 401: the gatekeeper decides against the live connection record."""
    bev = await connected(world, Powertrain.BEV, "bev-revoked", READS)
    assert (await sdk(bev.odometer)).distance > 0
    connection = (await world.registry.user_connections(world.client_id, "user-1"))[0]
    await world.connect.revoke(connection.id)
    error = await raises(bev.odometer)
    assert (error.status_code, error.type) == (401, "AUTHENTICATION")
