"""The Connect scope parameter: rendering, parsing, `required:` handling and error messages."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.catalog import get_catalog
from schemas.errors import ScopeError
from schemas.permissions import PermissionSet
from schemas.scope import parse_scope, render_scope

NAMES = list(get_catalog().permission_names)

permission_sets = st.dictionaries(st.sampled_from(NAMES), st.booleans(), min_size=1).map(
    lambda chosen: PermissionSet.of(chosen.items())
)


def test_parse_marks_prefixed_permissions_required() -> None:
    """`required:` makes a permission required; a bare name is optional."""
    parsed = parse_scope("required:read_odometer read_battery")
    assert parsed.items() == [
        {"name": "read_battery", "required": False},
        {"name": "read_odometer", "required": True},
    ]


def test_duplicates_collapse_and_required_wins() -> None:
    """A name given twice appears once, required if either mention says so, in either order."""
    assert parse_scope("read_fuel required:read_fuel") == parse_scope("required:read_fuel read_fuel")
    assert parse_scope("read_fuel  read_fuel\tread_fuel").items() == [{"name": "read_fuel", "required": False}]
    assert parse_scope("read_fuel required:read_fuel").required_names == ["read_fuel"]


def test_render_sorts_names_and_prefixes_required() -> None:
    """Rendering is deterministic: sorted names, `required:` on required ones."""
    permissions = PermissionSet.of([("read_vin", False), ("control_security", True), ("read_battery", False)])
    assert render_scope(permissions) == "required:control_security read_battery read_vin"


@pytest.mark.parametrize(
    ("scope", "token", "fragment"),
    [
        ("read_odometer read_batery", "read_batery", "Did you mean read_battery"),
        ("required:read_locaton", "required:read_locaton", "Did you mean read_location"),
        ("read_odometer required:", "required:", "names no permission"),
        ("read_odometer write_everything", "write_everything", "unknown permission 'write_everything'"),
        ("READ_ODOMETER", "READ_ODOMETER", "unknown permission"),
    ],
)
def test_errors_name_the_offending_token(scope: str, token: str, fragment: str) -> None:
    """Each malformed scope raises ScopeError naming the bad token and listing the valid names."""
    with pytest.raises(ScopeError) as raised:
        parse_scope(scope)
    assert raised.value.token == token
    assert repr(token) in str(raised.value)
    assert fragment in str(raised.value)
    assert "Valid permissions: read_alerts" in str(raised.value)
    assert raised.value.code == "configuration_error"


@pytest.mark.parametrize("scope", ["", "   ", "\n\t"])
def test_empty_scope_is_an_error(scope: str) -> None:
    """A scope naming no permission is refused."""
    with pytest.raises(ScopeError, match="empty scope"):
        parse_scope(scope)


@given(permission_sets)
def test_render_parse_round_trip(permissions: PermissionSet) -> None:
    """Parsing a rendered scope gives back the same set, required flags included."""
    assert parse_scope(render_scope(permissions)) == permissions


@given(st.lists(st.tuples(st.sampled_from(NAMES), st.booleans()), min_size=1), st.randoms())
def test_parse_ignores_order_and_repetition(mentions: list[tuple[str, bool]], rng: object) -> None:
    """Any order and any repetition of tokens parse to the same set: required if any mention is."""
    tokens = [f"required:{n}" if r else n for n, r in mentions]
    shuffled = list(tokens)
    rng.shuffle(shuffled)  # type: ignore[attr-defined]
    parsed = parse_scope(" ".join(shuffled))
    assert set(parsed) == {n for n, _ in mentions}
    assert set(parsed.required_names) == {n for n, r in mentions if r}
