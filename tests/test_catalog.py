"""The catalog data file: its contents match the seed and reference, and bad files are refused at load."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from schemas.catalog import Catalog, Mapping, load_catalog
from schemas.errors import CatalogError, UnknownNameError
from schemas.powertrain import Powertrain

ROOT = Path(__file__).resolve().parent.parent
CATALOG_FILE = ROOT / "schemas" / "catalog.toml"
SEED = ROOT.parent / "shared" / "seed" / "000_8a1b221bff658434.txt"


def test_permissions_are_the_seeds_28(catalog: Catalog) -> None:
    """22 read_ and 6 control_ permissions, with the seed's names."""
    kinds = [p.kind.value for p in catalog.permissions]
    assert (kinds.count("read"), kinds.count("control")) == (22, 6)
    if SEED.exists():
        seed_names = set(re.findall(r"\b((?:read|control)_[a-z_]+?)(?=[A-Z])", SEED.read_text()))
        assert {p.name for p in catalog.permissions} == seed_names


def test_every_signal_of_the_reference(catalog: Catalog) -> None:
    """96 signal codes: the reference's 93 plus 3 matrix-only, diagnostics expanded to 23 codes."""
    assert len(catalog.signals) == 96
    assert sum(1 for s in catalog.signals if s.group == "diagnostics") == 23
    assert catalog.signal("odometer-traveleddistance").permission == "read_odometer"
    assert catalog.signal("odometer-traveleddistance").mapping is Mapping.DOCUMENTED
    assert catalog.signal("climate-externaltemperature").mapping is Mapping.INFERRED


def test_physical_applicability(catalog: Catalog) -> None:
    """A BEV has no fuel or engine oil; an ICE or HEV has no traction battery or charging; a PHEV has both."""
    bev = catalog.physically_possible(Powertrain.BEV)
    hev = catalog.physically_possible(Powertrain.HEV)
    phev = catalog.physically_possible(Powertrain.PHEV)
    assert "internalcombustionengine-fuellevel" not in bev
    assert "internalcombustionengine-oillife" not in bev
    assert not any(key.startswith(("tractionbattery-", "charge-")) for key in hev)
    assert "start-charge" not in hev
    assert {"internalcombustionengine-fuellevel", "tractionbattery-stateofcharge", "start-charge"} <= phev


def test_commands_are_kebab_case_verbs_with_bounded_parameters(catalog: Catalog) -> None:
    """Commands have short kebab-case names; the charge limit is bounded to 50-100 %."""
    names = {c.name for c in catalog.commands}
    assert {"lock", "unlock", "start-charge", "stop-charge", "set-charge-limit", "open-trunk"} <= names
    (percent,) = catalog.command("set-charge-limit").params
    assert (percent.name, percent.minimum, percent.maximum) == ("percent", 50, 100)
    assert catalog.command("lock").permission == "control_security"


def test_unknown_lookups_suggest_close_names(catalog: Catalog) -> None:
    """Looking up a misspelt name raises with close matches."""
    with pytest.raises(UnknownNameError, match="did you mean 'wheel-tires'"):
        catalog.signal("wheel-tyres")


def _write_variant(tmp_path: Path, edit: str) -> Path:
    data = tomllib.loads(CATALOG_FILE.read_text())
    if edit == "duplicate signal":
        data["signals"].append(dict(data["signals"][0]))
    elif edit == "unknown permission":
        data["signals"][0]["permission"] = "read_mind"
    elif edit == "bad powertrain":
        data["signals"][0]["powertrains"] = ["DIESEL"]
    elif edit == "enum without values":
        data["signals"][0]["shape"] = "enum"
    elif edit == "command named like a signal":
        data["commands"][0]["name"] = data["signals"][0]["code"]
    path = tmp_path / "variant.toml"
    path.write_text(_to_toml(data))
    return path


def _to_toml(data: dict[str, list[dict[str, object]]]) -> str:
    # The variants only need arrays of flat tables (commands' params are dropped: not under test here).
    lines = []
    for table, rows in data.items():
        for row in rows:
            lines.append(f"[[{table}]]")
            lines += [f"{key} = {_toml_value(value)}" for key, value in row.items() if key != "params"]
    return "\n".join(lines) + "\n"


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(value)


def test_round_trip_of_the_variant_writer_loads(tmp_path: Path) -> None:
    """The helper that writes variants produces a loadable catalog when nothing is edited."""
    assert len(load_catalog(_write_variant(tmp_path, "none")).signals) == 96


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        ("duplicate signal", "duplicate signal"),
        ("unknown permission", "unknown permission 'read_mind'"),
        ("bad powertrain", "DIESEL"),
        ("enum without values", "`enum` values are required"),
        ("command named like a signal", "used by both a signal and a command"),
    ],
)
def test_inconsistent_catalog_is_refused_at_load(tmp_path: Path, edit: str, fragment: str) -> None:
    """A catalog file that contradicts itself fails to load, saying why."""
    with pytest.raises(CatalogError, match=fragment):
        load_catalog(_write_variant(tmp_path, edit))


def test_no_code_hard_codes_a_signal_name(catalog: Catalog) -> None:
    """Outside the data file, no source file names a signal code: they all look it up."""
    codes = {s.code for s in catalog.signals}
    offenders = []
    for package in ("schemas", "services", "simulator"):
        for path in (ROOT / package).rglob("*.py"):
            text = path.read_text()
            offenders += [f"{path.relative_to(ROOT)}: {code}" for code in codes if f'"{code}"' in text]
    assert offenders == []
