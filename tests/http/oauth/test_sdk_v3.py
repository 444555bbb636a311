"""API v3 and compatibility against `fleetgate serve`, with a gatekeeper and a vehicles service running beside it
(subprocesses on the test's redis-server and key prefix), through the official smartcar SDK where it has a method
(`Vehicle.get_signals/get_signal`, `smartcar.get_vehicle`, `get_compatibility`) and httpx elsewhere."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis
import smartcar
from smartcar.exception import SmartcarException

from devtools.builders import SIM_START
from schemas.application import AppMode
from services.registry import AppStore
from services.settings import Settings
from tests.http.oauth.conftest import REDIRECT_URI, OAuthWorld

FLEETGATE = [sys.executable, "-m", "fleetgate"]
WORKER_STOP_TIMEOUT_S = 10
WORKER_START_TIMEOUT_S = 30


def _env(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "FLEETGATE_REDIS_URL": settings.redis_url,
        "FLEETGATE_KEY_PREFIX": settings.key_prefix,
        "FLEETGATE_SIM_START": SIM_START,
    }


@pytest.fixture
def workers(http_settings: Settings) -> Iterator[None]:
    """`fleetgate gatekeeper run` and `fleetgate vehicles serve` on the server's Redis and prefix."""
    env = _env(http_settings)
    started = [
        subprocess.Popen([*FLEETGATE, "gatekeeper", "run"], env=env),
        subprocess.Popen([*FLEETGATE, "vehicles", "serve"], env=env),
    ]
    beating = redis.Redis.from_url(http_settings.redis_url)
    keys = http_settings.keys
    deadline = time.monotonic() + WORKER_START_TIMEOUT_S
    try:
        # Ready once both beat: a call sent before would wait out its worker's start.
        while not (beating.keys(f"{keys.heartbeat_prefix}*") and beating.keys(f"{keys.vehicles_heartbeat_prefix}*")):
            assert time.monotonic() < deadline, "the gatekeeper and the vehicles service never started beating"
            assert all(p.poll() is None for p in started), "a worker exited"
            time.sleep(0.1)
        yield
    finally:
        beating.close()
        for process in started:
            process.terminate()
        for process in started:
            process.wait(WORKER_STOP_TIMEOUT_S)


@pytest.fixture
def v3_origin(world: OAuthWorld, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(smartcar.config, "VEHICLE_API_ORIGIN", world.base_url)
    return world.base_url


async def _token(world: OAuthWorld, user_id: str, vehicle_id: str, scope: str) -> str:
    await world.connect_vehicle(user_id, vehicle_id, scope=scope)
    return str(world.auth_client().exchange_code(await world.code(user_id)).access_token)


def _by_code(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {signal["attributes"]["code"]: signal for signal in body["data"]}


@pytest.mark.usefixtures("workers")
async def test_one_list_call_mixes_success_permission_and_not_capable(world: OAuthWorld, v3_origin: str) -> None:
    """A BEV with read_battery and read_odometer granted: those succeed (real units, ISO meta), an ungranted
    signal is PERMISSION, a fuel signal VEHICLE_NOT_CAPABLE (not PERMISSION, though read_fuel is not granted)."""
    del v3_origin
    token = await _token(world, "user-a", "bev-a", "read_battery read_odometer")
    response = smartcar.Vehicle("bev-a", token).get_signals()
    body = response["body"]
    signals = _by_code(body)
    assert body["meta"] == {"totalCount": len(signals), "pageSize": len(signals), "pageNumber": 1}
    assert body["included"]["vehicle"]["attributes"]["powertrainType"] == "BEV"
    soc = signals["tractionbattery-stateofcharge"]
    assert soc["attributes"]["status"] == {"value": "SUCCESS"}
    assert soc["attributes"]["body"]["unit"] == "percent"
    assert soc["attributes"]["group"] == "TractionBattery"
    assert all(soc["meta"][k].endswith("Z") for k in ("retrievedAt", "oemUpdatedAt", "ingestedAt"))
    assert signals["odometer-traveleddistance"]["attributes"]["body"]["unit"] == "km"
    denied = signals["charge-ischarging"]["attributes"]
    assert denied["status"]["value"] == "ERROR"
    assert denied["status"]["error"]["type"] == "PERMISSION"
    assert denied["status"]["error"]["resolution"] == {"type": "REAUTHENTICATE"}
    assert "body" not in denied
    incapable = signals["internalcombustionengine-fuellevel"]["attributes"]["status"]
    assert (incapable["value"], incapable["error"]["type"], incapable["error"]["code"]) == (
        "ERROR",
        "COMPATIBILITY",
        "VEHICLE_NOT_CAPABLE",
    )
    assert response["headers"]["sc-request-id"]


@pytest.mark.usefixtures("workers")
async def test_vehicle_state_fault_keeps_the_stale_body(
    world: OAuthWorld, v3_origin: str, http_settings: Settings
) -> None:
    """An UNREACHABLE fault on the odometer: get_signal answers 200, status ERROR VEHICLE_STATE/UNREACHABLE, and
    the last value the vehicle reported; the single signal is wrapped with included.vehicle."""
    del v3_origin
    token = await _token(world, "user-b", "bev-b", "read_odometer")
    fault = [*FLEETGATE, "vehicles", "fault", "bev-b", "--error", "UNREACHABLE", "--target"]
    subprocess.run([*fault, "odometer-traveleddistance"], env=_env(http_settings), check=True, capture_output=True)
    body = smartcar.Vehicle("bev-b", token).get_signal("odometer-traveleddistance")["body"]
    assert body["included"]["vehicle"]["id"] == "bev-b"
    attributes = body["data"]["attributes"]
    assert attributes["status"]["value"] == "ERROR"
    error = attributes["status"]["error"]
    assert (error["type"], error["code"], error["title"]) == ("VEHICLE_STATE", "UNREACHABLE", "Unreachable")
    assert error["description"] == "Deprecated. Use detail"
    assert attributes["body"]["unit"] == "km"
    assert attributes["body"]["value"] > 0


@pytest.mark.usefixtures("workers")
async def test_lock_command_then_the_read_shows_it(world: OAuthWorld, v3_origin: str) -> None:
    """POST commands/security/lock answers a SUCCESS command-execution; closure-islocked then reads true; unlock
    makes it false; an unknown command is 404 and a bad parameter 400, both as v3 errors."""
    token = await _token(world, "user-c", "bev-c", "read_security control_security control_charge")
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=v3_origin, headers=headers) as client:
        for action, locked in (("lock", True), ("unlock", False)):
            response = await client.post(f"/v3/vehicles/bev-c/commands/security/{action}")
            assert response.status_code == 200, response.text
            data = response.json()["data"]
            assert data["type"] == "command-execution"
            assert data["attributes"]["commandType"] == f"security-{action}"
            assert data["attributes"]["status"] == {"value": "SUCCESS"}
            assert data["meta"]["executedAt"].endswith("Z")
            assert data["meta"]["completedAt"].endswith("Z")
            read = smartcar.Vehicle("bev-c", token).get_signal("closure-islocked")["body"]
            assert read["data"]["attributes"]["body"]["value"] is locked
        limit = await client.post(
            "/v3/vehicles/bev-c/commands/charge/set-limit", json={"data": {"attributes": {"percent": 80}}}
        )
        assert limit.status_code == 200, limit.text
        assert limit.json()["data"]["attributes"]["parameters"] == {"percent": 80}
        too_low = await client.post(
            "/v3/vehicles/bev-c/commands/charge/set-limit", json={"data": {"attributes": {"percent": 10}}}
        )
        assert too_low.status_code == 400
        assert too_low.json()["errors"][0]["type"] == "VALIDATION"
        for bad in ({"data": None}, {"data": {"attributes": [1]}}, [1]):
            malformed = await client.post("/v3/vehicles/bev-c/commands/charge/set-limit", json=bad)
            assert malformed.status_code == 400, malformed.text
        unknown = await client.post("/v3/vehicles/bev-c/commands/security/explode")
        assert unknown.status_code == 404
        assert unknown.json()["errors"][0]["status"] == "404"
        missing = await client.get("/v3/vehicles/bev-c/signals/no-such")
        assert missing.status_code == 404


@pytest.mark.usefixtures("workers")
async def test_app_token_with_sc_user_id_reaches_only_that_users_vehicles(world: OAuthWorld, v3_origin: str) -> None:
    """An application token with sc-user-id reads that user's vehicle; without sc-user-id it is 400; another
    user's vehicle is 401 for the app token and for a user's token alike."""
    await _token(world, "user-d", "bev-d", "read_odometer")
    other_token = await _token(world, "user-e", "bev-e", "read_odometer")
    async with httpx.AsyncClient(base_url=v3_origin) as client:
        issued = await client.post(
            "/oauth/token", data={"grant_type": "client_credentials"}, auth=(world.client_id, world.secret)
        )
        assert issued.status_code == 200, issued.text
        bearer = {"Authorization": f"Bearer {issued.json()['access_token']}"}
        path = "/v3/vehicles/bev-d/signals/odometer-traveleddistance"
        ok = await client.get(path, headers={**bearer, "sc-user-id": "user-d"})
        assert ok.status_code == 200, ok.text
        assert ok.json()["data"]["attributes"]["status"]["value"] == "SUCCESS"
        no_user = await client.get(path, headers=bearer)
        assert no_user.status_code == 400
        assert "sc-user-id" in no_user.json()["errors"][0]["detail"]
        wrong_user = await client.get(path, headers={**bearer, "sc-user-id": "user-e"})
        assert wrong_user.status_code == 401
        assert wrong_user.json()["errors"][0]["type"] == "AUTHENTICATION"
        foreign = await client.get(path, headers={"Authorization": f"Bearer {other_token}"})
        assert foreign.status_code == 401
    vehicle = smartcar.smartcar.get_vehicle(other_token, "bev-e")
    assert vehicle["body"]["data"]["attributes"]["make"] == "Tesla"
    assert vehicle["body"]["data"]["attributes"]["mode"] == "test"


async def test_compatibility_through_the_sdk(world: OAuthWorld, redis: Any) -> None:
    """Test mode: a 0SC VIN with level bev (sent as a flag) is capable of read_battery, not read_fuel; without a
    level it is VALIDATION 400 naming the field. Live: a registered VIN answers from its capabilities, an unknown
    one is not compatible."""
    options = {"client_id": world.client_id, "client_secret": world.secret, "version": "2.0"}
    bev = smartcar.get_compatibility(
        "0SCAUDI037A5ADB1C",
        ["read_battery", "read_fuel"],
        options={**options, "flags": {"test_mode_compatibility_level": "bev"}},
    )
    assert (bev.compatible, bev.reason) == (False, "VEHICLE_NOT_COMPATIBLE")
    by_permission = {c.permission: c for c in bev.capabilities}
    assert (by_permission["read_battery"].capable, by_permission["read_battery"].reason) == (True, None)
    assert (by_permission["read_fuel"].capable, by_permission["read_fuel"].reason) == (False, "VEHICLE_NOT_CAPABLE")
    assert by_permission["read_battery"].endpoint.startswith("/v3/vehicles/")
    assert bev.meta.request_id
    with pytest.raises(SmartcarException) as raised:
        smartcar.get_compatibility("0SCAUDI037A5ADB1C", ["read_battery"], options=options)
    assert (raised.value.status_code, raised.value.type) == (400, "VALIDATION")
    assert "test_mode_compatibility_level" in raised.value.description
    live = await AppStore(redis, world.keys).create(
        "Live", [REDIRECT_URI], AppMode.LIVE, app_id=f"live-{uuid.uuid4().hex[:8]}"
    )
    await world.connect_vehicle(None, "bev-f", app_id=live.app.id, scope="read_odometer")
    live_options = {"client_id": live.app.id, "client_secret": live.client_secret, "version": "2.0"}
    found = smartcar.get_compatibility("5YJ3E1EA7KF000001", ["read_odometer", "read_battery"], options=live_options)
    assert (found.compatible, found.reason) == (True, None)
    unknown = smartcar.get_compatibility("1HGCM82633A004352", ["read_odometer"], options=live_options)
    assert (unknown.compatible, unknown.reason) == (False, "VEHICLE_NOT_COMPATIBLE")
    assert unknown.capabilities[0].reason == "SMARTCAR_NOT_CAPABLE"
    with pytest.raises(SmartcarException) as refused:
        smartcar.get_compatibility(
            "1HGCM82633A004352", ["read_odometer"], options={**live_options, "client_secret": "x"}
        )
    assert refused.value.status_code == 401


@pytest.mark.parametrize("http_settings", [{"api_timeout_s": 0.3}], indirect=True)
async def test_without_a_gatekeeper_single_calls_are_502_and_the_list_is_per_signal(world: OAuthWorld) -> None:
    """Nobody answers: a single signal and a command are a top-level 502 UPSTREAM/NO_RESPONSE with retry later;
    the list is 200 with every signal ERROR UPSTREAM/NO_RESPONSE."""
    token = await _token(world, "user-g", "bev-g", "read_odometer control_security")
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=world.base_url, headers=headers) as client:
        single = await client.get("/v3/vehicles/bev-g/signals/odometer-traveleddistance")
        command = await client.post("/v3/vehicles/bev-g/commands/security/lock")
        listed = await client.get("/v3/vehicles/bev-g/signals")
    for response in (single, command):
        assert response.status_code == 502
        (entry,) = response.json()["errors"]
        assert (entry["type"], entry["code"], entry["resolution"]) == (
            "UPSTREAM",
            "NO_RESPONSE",
            {"type": "RETRY_LATER"},
        )
        assert entry["requestId"] == response.headers["sc-request-id"]
    assert listed.status_code == 200
    codes = {s["attributes"]["status"]["error"]["code"] for s in listed.json()["data"]}
    assert codes == {"NO_RESPONSE"}
