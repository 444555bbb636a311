"""Redis with an ACL user and TLS: the worker and the CLI work through `rediss://user:pass@...`, and never leak it.

Each test runs against two dedicated servers: `acl` (the default user off, one user with a password, plain
TCP) and `tls` (the same user, TLS only, a CA and server certificate made with the openssl CLI). The `tls`
cases are skipped, saying why, when this redis-server build or this machine cannot do TLS.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from devtools.workers import FLEETGATE, fleetgate_env, start_worker_process
from services.keyspace import Keys
from services.local_redis import free_port
from services.redis_client import connect
from tests.reliability.conftest import read_stream, request_body, stop_process, stream_has, wait_until

# `redis` by hand: the ACL and TLS redis-servers are started here (start_secure_redis), not by a conftest fixture.
pytestmark = [pytest.mark.reliability, pytest.mark.redis]

USER = "fleet"
PASSWORD = "s3cret-pass"
WRONG_PASSWORD = "wr0ng-pass-7f3a9"
SECRETS = (PASSWORD, WRONG_PASSWORD)


@dataclass
class SecureRedis:
    process: subprocess.Popen[bytes]
    port: int
    ca_file: Path | None

    def url(self, password: str | None = PASSWORD, *, verify: bool = True) -> str:
        credentials = f"{USER}:{password}@" if password is not None else ""
        if self.ca_file is None:
            return f"redis://{credentials}127.0.0.1:{self.port}/0"
        query = f"?ssl_ca_certs={self.ca_file}" if verify else ""
        return f"rediss://{credentials}127.0.0.1:{self.port}/0{query}"


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A throw-away CA, and a server certificate it signed for 127.0.0.1: (ca, cert, key)."""
    ca, ca_key = directory / "ca.crt", directory / "ca.key"
    cert, key, request = directory / "server.crt", directory / "server.key", directory / "server.csr"
    extensions = directory / "san.cnf"
    extensions.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    new_key = ("-newkey", "rsa:2048", "-nodes", "-keyout")
    signed = ("-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-days", "2", "-extfile", extensions)
    commands = [
        ["req", "-x509", *new_key, ca_key, "-out", ca, "-days", "2", "-subj", "/CN=fleetgate test CA"],
        ["req", *new_key, key, "-out", request, "-subj", "/CN=127.0.0.1"],
        ["x509", "-req", "-in", request, "-out", cert, *signed],
    ]
    for command in commands:
        subprocess.run(["openssl", *map(str, command)], check=True, capture_output=True, timeout=60)
    return ca, cert, key


def answers(port: int, context: ssl.SSLContext | None) -> bool:
    """Whether the server answers a PING (with NOAUTH: unauthenticated, but up), over TLS when `context`."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as raw:
            if context is None:
                return ping(raw)
            with context.wrap_socket(raw, server_hostname="127.0.0.1") as wrapped:
                return ping(wrapped)
    except OSError:  # refused while starting, or a TLS handshake on a port not listening yet
        return False


def ping(conn: socket.socket) -> bool:
    conn.sendall(b"PING\r\n")
    return conn.recv(64).startswith((b"+PONG", b"-NOAUTH"))


def start_secure_redis(directory: Path, *, tls: bool) -> SecureRedis:
    """redis-server with only the ACL user `fleet` (the default user off); TLS only (no plain port) when `tls`."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not on PATH")
    port = free_port()
    log = directory / "redis.log"
    command = [binary, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(directory)]
    command += ["--logfile", str(log), "--user", "default", "off"]
    command += ["--user", USER, "on", f">{PASSWORD}", "~*", "&*", "+@all"]
    ca_file, context = None, None
    if tls:
        if shutil.which("openssl") is None:
            pytest.skip("TLS part skipped: the openssl CLI (to make a CA and a certificate) is not installed")
        ca_file, cert, key = make_certificates(directory)
        command += ["--port", "0", "--tls-port", str(port), "--tls-cert-file", str(cert), "--tls-key-file", str(key)]
        command += ["--tls-ca-cert-file", str(ca_file), "--tls-auth-clients", "no"]
        context = ssl.create_default_context(cafile=str(ca_file))
    else:
        command += ["--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            said = process.communicate()[1].decode() + (log.read_text() if log.exists() else "")
            if tls and "tls" in said.lower():
                said = " ".join(said.split())[-160:]
                pytest.skip(f"TLS part skipped: this redis-server build has no TLS support ({said})")
            raise RuntimeError(f"redis-server exited with {process.returncode}: {said[-500:]}")
        if answers(port, context):
            return SecureRedis(process, port, ca_file)
        time.sleep(0.05)
    process.terminate()
    process.communicate(timeout=10)
    raise RuntimeError("redis-server did not answer within 10 s")


def stopped(server: SecureRedis) -> None:
    server.process.terminate()
    server.process.communicate(timeout=10)


@pytest.fixture(scope="module")
def acl_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureRedis]:
    server = start_secure_redis(tmp_path_factory.mktemp("redis-acl"), tls=False)
    yield server
    stopped(server)


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureRedis]:
    server = start_secure_redis(tmp_path_factory.mktemp("redis-tls"), tls=True)
    yield server
    stopped(server)


@pytest.fixture(params=["acl", "tls"])
def secure(request: pytest.FixtureRequest) -> SecureRedis:
    """The ACL-only server, then the ACL + TLS one."""
    server: SecureRedis = request.getfixturevalue(f"{request.param}_redis")
    return server


async def fleetgate(redis_url: str, prefix: str, *args: str) -> tuple[int, str, str]:
    """Run the `fleetgate` CLI with FLEETGATE_REDIS_URL set: (exit code, stdout, stderr)."""
    process = await asyncio.create_subprocess_exec(
        FLEETGATE,
        *args,
        env=fleetgate_env(redis_url, prefix),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text


@pytest.mark.timeout(60)
async def test_worker_and_cli_work_through_the_secured_url(secure: SecureRedis, keys: Keys, tmp_path: Path) -> None:
    """With user and password (and TLS): CLI writes, the worker decides, check is healthy; no password anywhere."""
    url = secure.url()
    add = ("vehicles", "add", "--id", "sec-bev", "--make", "Tesla", "--model", "Model 3", "--year", "2022")
    code, out, err = await fleetgate(url, keys.prefix, *add, "--powertrain", "BEV")
    assert (code, err) == (0, ""), err
    code, out, err = await fleetgate(
        url, keys.prefix, "connect", "authorize", "--vehicle", "sec-bev", "--scope", "read_odometer"
    )
    assert (code, err) == (0, ""), err
    connection_id = json.loads(out)["connection_id"]
    metrics_port = free_port()
    stderr = tmp_path / "worker.stderr"
    worker = start_worker_process(fleetgate_env(url, keys.prefix, block_ms=100, metrics_port=metrics_port), stderr)
    client = connect(url)
    try:
        assert await client.acl_whoami() in (USER, USER.encode())
        for request_id, target in (("sec-1", "odometer-traveleddistance"), ("sec-2", "charge-ischarging")):
            await client.xadd(keys.requests, {"data": request_body(request_id, connection_id, "sec-bev", target)})
        assert await wait_until(lambda: stream_has(client, keys.decisions, 2), timeout=20), stderr.read_text()
        check = await fleetgate(url, keys.prefix, "gatekeeper", "check")
        show = await fleetgate(url, keys.prefix, "connect", "show", connection_id)
        metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        metrics = await asyncio.to_thread(lambda: urllib.request.urlopen(metrics_url, timeout=5).read().decode())
        decisions = {d["request_id"]: d["outcome"] for _, d in await read_stream(client, keys.decisions)}
    finally:
        exit_code = await asyncio.to_thread(stop_process, worker)
        await client.aclose()
    assert decisions == {"sec-1": "ALLOWED", "sec-2": "PERMISSION_DENIED"}
    assert check[0] == 0
    assert check[1].startswith("healthy: 1 worker(s)")
    assert show[0] == 0
    assert json.loads(show[1])["connection_id"] == connection_id
    assert 'fleetgate_decisions_total{outcome="ALLOWED"} 1.0' in metrics
    assert exit_code == 0
    logs = stderr.read_text()
    assert f"{USER}:***@127.0.0.1:{secure.port}" in logs  # the worker names its server, redacted
    assert_no_secret(logs, metrics, check[1], check[2], show[1], show[2], out, err)


@pytest.mark.timeout(60)
async def test_bad_credentials_give_a_clear_error_and_exit_2_without_the_password(
    secure: SecureRedis, keys: Keys
) -> None:
    """Wrong password, no credentials (or no CA for TLS): one line on stderr, no password printed: `error: ...` and
    exit 2 from a command, `unhealthy: ...` and exit 1 from the health check (container runtimes reserve 2)."""
    wrong, anonymous = secure.url(WRONG_PASSWORD), secure.url(None)
    runs = [
        fleetgate(wrong, keys.prefix, "access", "show"),
        fleetgate(wrong, keys.prefix, "vehicles", "show", "sec-bev"),
        fleetgate(wrong, keys.prefix, "gatekeeper", "check"),
        fleetgate(anonymous, keys.prefix, "gatekeeper", "check"),
    ]
    if secure.ca_file is not None:
        runs.append(fleetgate(secure.url(verify=False), keys.prefix, "access", "show"))
    results = await asyncio.gather(*runs)
    for n, (code, out, err) in enumerate(results[:3]):
        check = n == 2
        assert (code, out) == ((1, "") if check else (2, ""))
        assert err.startswith(f"{'unhealthy' if check else 'error'}: Redis at {secure.url('***', verify=True)}: ")
        assert "invalid username-password pair" in err
        assert err.count("\n") == 1  # one line, no traceback
    code, out, err = results[3]
    assert (code, out) == (1, "")
    assert err.startswith("unhealthy: Redis at ")
    assert "Authentication required" in err or "NOAUTH" in err
    if secure.ca_file is not None:
        code, out, err = results[4]
        assert (code, out) == (2, "")
        assert err.startswith("error: Redis at ")
        assert "certificate verify failed" in err
    for _, out, err in results:
        assert_no_secret(out, err)


@pytest.mark.timeout(60)
async def test_worker_with_a_wrong_password_waits_and_logs_json_without_it(
    secure: SecureRedis, keys: Keys, tmp_path: Path
) -> None:
    """A worker given a wrong password keeps retrying, logs why as JSON lines, and never logs the password."""
    stderr = tmp_path / "worker.stderr"
    worker = start_worker_process(
        fleetgate_env(secure.url(WRONG_PASSWORD), keys.prefix, block_ms=100, log_json=True), stderr
    )
    try:
        waited = await wait_until(lambda: logged(stderr, "waiting for Redis", times=3), timeout=20)
        alive = worker.poll() is None
    finally:
        exit_code = await asyncio.to_thread(stop_process, worker)
    logs = stderr.read_text()
    assert waited, logs
    assert alive
    assert exit_code == 0
    ours = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    retries = [entry for entry in ours if entry["message"].startswith("waiting for Redis")]
    assert len(retries) >= 3
    assert all(entry["level"] == "warning" for entry in retries)
    assert "invalid username-password pair" in retries[0]["message"]
    assert any(f"{USER}:***@" in entry["message"] for entry in ours)
    assert_no_secret(logs)


async def logged(path: Path, text: str, times: int) -> bool:
    return path.read_text().count(text) >= times
