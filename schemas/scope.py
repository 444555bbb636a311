"""The Connect `scope` parameter: space-separated permission names, each optionally prefixed `required:`."""

from __future__ import annotations

from schemas.catalog import close_matches, get_catalog
from schemas.errors import ScopeError
from schemas.permissions import PermissionSet

REQUIRED_PREFIX = "required:"


def render_scope(permissions: PermissionSet) -> str:
    """The scope string for a permission set, names sorted, required ones prefixed."""
    return " ".join(
        f"{REQUIRED_PREFIX}{item['name']}" if item["required"] else item["name"] for item in permissions.items()
    )


def parse_scope(scope: str) -> PermissionSet:
    """Parse a scope string; duplicates collapse and `required:` wins over a plain mention.

    Raises ScopeError naming the offending token: an unknown name (with close matches and the valid
    names), a bare `required:`, or a scope with no permission at all.
    """
    tokens = scope.split()
    if not tokens:
        raise ScopeError(f"empty scope: name at least one permission. {_valid_names()}")
    catalog = get_catalog()
    items: list[tuple[str, bool]] = []
    for token in tokens:
        required = token.startswith(REQUIRED_PREFIX)
        name = token.removeprefix(REQUIRED_PREFIX) if required else token
        if not name:
            raise ScopeError(f"{token!r} names no permission after 'required:'. {_valid_names()}", token)
        if name not in catalog.permission_names:
            suggestions = close_matches(name, catalog.permission_names)
            hint = f" Did you mean {' or '.join(suggestions)}?" if suggestions else ""
            raise ScopeError(f"unknown permission {name!r} in scope token {token!r}.{hint} {_valid_names()}", token)
        items.append((name, required))
    return PermissionSet.of(items)


def _valid_names() -> str:
    return "Valid permissions: " + " ".join(get_catalog().permission_names)
