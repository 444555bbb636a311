"""The app's Vehicle Access versions: `/dashboard/apps/{app_id}/access/versions` lists them (newest first, with
when each was published), `.../versions/{n}` shows one, `.../versions/diff?old=A&new=B` compares two."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from schemas.access import VehicleAccessConfig
from schemas.access_diff import diff_configs
from schemas.catalog import get_catalog
from services.http.dashboard.access import published
from services.http.dashboard.auth import AppScoped, DashboardNotFoundError, SignedIn
from services.http.dashboard.layout import page
from services.http.dashboard.selection import Selection, permissions_panel

router = APIRouter()


@router.get("/apps/{app_id}/access/versions")
async def version_list(request: Request, signed: AppScoped) -> Response:
    listed = await signed.context.registry.config_versions(signed.app.id)
    context = {"versions": listed, "default_new": listed[0].version if listed else None}
    context["default_old"] = listed[1].version if len(listed) > 1 else context["default_new"]
    return page(request, signed, "versions.html", context, active="versions", title="Versions")


@router.get("/apps/{app_id}/access/versions/diff")
async def version_diff(request: Request, signed: AppScoped, old: str = "", new: str = "") -> Response:
    before, after = await _version(signed, old), await _version(signed, new)
    listed = await signed.context.registry.config_versions(signed.app.id)
    context = {"old": before.version, "new": after.version, "diff": diff_configs(before, after), "versions": listed}
    return page(request, signed, "diff.html", context, active="versions", title=f"Version {old} → {new}")


@router.get("/apps/{app_id}/access/versions/{number}")
async def version_view(request: Request, signed: AppScoped, number: str) -> Response:
    config = await _version(signed, number)
    listed = await signed.context.registry.config_versions(signed.app.id)
    context: dict[str, Any] = {
        "config": config,
        "published": next(v for v in listed if v.version == config.version),
        "panel": permissions_panel(Selection.of_config(config), signed.app),
        "names": _names(config),
    }
    return page(request, signed, "version.html", context, active="versions", title=f"Version {config.version}")


async def _version(signed: SignedIn, number: str) -> VehicleAccessConfig:
    """A published version of the session's app; the dashboard's 404 for anything else."""
    config = await published(signed, int(number)) if number.isdigit() and 0 < int(number) < 2**53 else None
    if config is None:
        raise DashboardNotFoundError
    return config


def _names(config: VehicleAccessConfig) -> dict[str, str]:
    """The readable name of each selected signal and command (for the version's listing)."""
    catalog = get_catalog()
    names = {s.code: catalog.signal(s.code).name for s in config.signals}
    return names | {c.name: catalog.command(c.name).description.rstrip(".") for c in config.commands}
