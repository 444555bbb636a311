"""The Smartcar v2 error bodies the HTTP app builds (services/http/errors.py, strings in schemas/problems.py)."""

from __future__ import annotations

import pytest

from schemas.problems import (
    HTTP_AUTHENTICATION,
    HTTP_NOT_FOUND,
    HTTP_PERMISSION,
    HTTP_RATE_LIMIT,
    HTTP_SERVER_INTERNAL,
    HTTP_VALIDATION,
)
from services.http.errors import error_body
from tests.test_vehicle_problems import REFERENCE, _reference_rows

RID = "5dea93a1-3f79-4246-90c5-89610a20471b"


def test_permission_body_is_smartcars() -> None:
    """PERMISSION: 403, REAUTHENTICATE, docURL #null, Smartcar's description and no user message."""
    body = error_body(HTTP_PERMISSION, RID)
    assert body == {
        "type": "PERMISSION",
        "code": None,
        "description": "Your application has insufficient permissions to access the requested resource. Please "
        "prompt the user to re-authenticate using Smartcar Connect.",
        "statusCode": 403,
        "requestId": RID,
        "resolution": {"type": "REAUTHENTICATE"},
        "docURL": "https://smartcar.com/docs/errors/api-errors/permission-errors#null",
    }


def test_authentication_validation_not_found_bodies() -> None:
    """AUTHENTICATION 401 (resolution null), VALIDATION 400 (with a user message), RESOURCE_NOT_FOUND 404."""
    auth = error_body(HTTP_AUTHENTICATION, RID)
    assert (auth["statusCode"], auth["resolution"], "suggestedUserMessage" in auth) == (401, {"type": None}, False)
    assert auth["description"].startswith("The authorization header is missing or malformed")
    validation = error_body(HTTP_VALIDATION, RID, app_name="Acme")
    assert validation["statusCode"] == 400
    assert validation["suggestedUserMessage"].startswith("Your car is temporarily unable to connect to Acme.")
    assert error_body(HTTP_NOT_FOUND, RID)["statusCode"] == 404


@pytest.mark.skipif(not REFERENCE.exists(), reason="needs ../shared/reference")
def test_catalogue_rows_match_the_reference() -> None:
    """SERVER/INTERNAL and RATE_LIMIT/SMARTCAR_API have the reference's status, description, resolution, message."""
    rows = _reference_rows()
    for problem in (HTTP_SERVER_INTERNAL, HTTP_RATE_LIMIT):
        expected = rows[problem.type, problem.code or ""]
        assert (problem.status_code, problem.description, problem.resolution, problem.suggested_user_message) == (
            expected
        )
