"""The app over real HTTP (uvicorn on a free port, the session's redis-server)."""

from __future__ import annotations

import socket
import uuid

import httpx

from services.http.server import bind


def test_healthz_answers_ok_over_http(http_server: str) -> None:
    """GET /healthz answers 200 {"status": "ok"} while Redis answers PING."""
    response = httpx.get(f"{http_server}/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["content-type"] == "application/json"


def test_every_response_has_a_uuid_request_id(http_server: str) -> None:
    """Each response carries its own uuid4 SC-Request-Id, found or not found."""
    ids = [httpx.get(f"{http_server}{path}").headers["SC-Request-Id"] for path in ("/healthz", "/healthz", "/nope")]
    assert len(set(ids)) == 3
    assert all(uuid.UUID(i).version == 4 for i in ids)


def test_unknown_path_is_a_smartcar_shaped_404(http_server: str) -> None:
    """An unknown path answers a Smartcar v2 error body whose requestId is the SC-Request-Id header."""
    response = httpx.get(f"{http_server}/v2.0/no-such-thing")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["type"] == "RESOURCE_NOT_FOUND"
    assert body["statusCode"] == 404
    assert body["requestId"] == response.headers["SC-Request-Id"]
    assert body["resolution"] == {"type": None}
    assert body["docURL"].startswith("https://smartcar.com/docs/errors/api-errors/")


def test_static_css_is_served(http_server: str) -> None:
    """The Connect stylesheet is served from /static."""
    response = httpx.get(f"{http_server}/static/connect.css")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/css")
    assert ".brand-list-item" in response.text


def test_bound_socket_sets_tcp_nodelay() -> None:
    """The listening socket has TCP_NODELAY (accepted connections inherit it): no ~40 ms delayed-ACK stall."""
    sock = bind("127.0.0.1", 0)
    try:
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    finally:
        sock.close()
