"""Fixtures of the webhook tests: the HTTP tier's server and its SDK world (tests/http/oauth/conftest.py), for the
subscription endpoints the official SDK calls."""

from __future__ import annotations

from tests.http.conftest import http_server
from tests.http.oauth.conftest import http_settings, world

__all__ = ["http_server", "http_settings", "world"]
