"""Vehicle Access: configs and `derive()`, the least permission set for a selection."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas.access import CommandSelection, SignalSelection, VehicleAccessConfig, derive
from schemas.catalog import get_catalog
from schemas.errors import ConfigError
from schemas.permissions import PermissionSet

CATALOG = get_catalog()
SIGNALS = [s.code for s in CATALOG.signals]
COMMANDS = [c.name for c in CATALOG.commands]


def _permission_of(name: str) -> str:
    return CATALOG.signal_or_command(name).permission


configs = st.builds(
    lambda signals, commands: VehicleAccessConfig(
        signals=tuple(SignalSelection(code=c, required=r) for c, r in signals.items()),
        commands=tuple(CommandSelection(name=n, required=r) for n, r in commands.items()),
    ),
    st.dictionaries(st.sampled_from(SIGNALS), st.booleans(), min_size=1, max_size=12),
    st.dictionaries(st.sampled_from(COMMANDS), st.booleans(), max_size=5),
)


def test_seed_example() -> None:
    """State of charge, charging status and odometer derive exactly read_battery, read_charge, read_odometer."""
    config = VehicleAccessConfig.select(
        signals=["tractionbattery-stateofcharge", "charge-detailedchargingstatus", "odometer-traveleddistance"]
    )
    assert list(derive(config)) == ["read_battery", "read_charge", "read_odometer"]
    assert derive(config).required_names == []


def test_required_when_any_selection_needing_it_is_required() -> None:
    """Two signals share read_charge; marking either one required makes the permission required."""
    config = VehicleAccessConfig.select(
        signals=["charge-ischarging", "charge-chargelimits", "odometer-traveleddistance"],
        commands=["lock"],
        required=["charge-chargelimits", "lock"],
    )
    derived = derive(config)
    assert derived.required_names == ["control_security", "read_charge"]
    assert not derived.is_required("read_odometer")


def test_commands_derive_their_control_permission() -> None:
    """Commands contribute their control_ permission."""
    config = VehicleAccessConfig.select(commands=["start-charge", "set-charge-limit", "open-trunk"])
    assert list(derive(config)) == ["control_charge", "control_trunk"]


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"signals": ["odometer-traveledistance"]}, "did you mean 'odometer-traveleddistance'"),
        ({"commands": ["lock-doors"]}, "unknown command 'lock-doors'"),
        ({"signals": [], "commands": []}, "select at least one signal or command"),
    ],
)
def test_invalid_selection_names_the_problem(kwargs: dict[str, list[str]], fragment: str) -> None:
    """An unknown name or an empty selection is a validation error saying what is wrong."""
    with pytest.raises(ValidationError, match=fragment):
        VehicleAccessConfig.select(**kwargs)


def test_required_must_be_selected() -> None:
    """Marking required something that is not selected is an error naming it."""
    with pytest.raises(ConfigError, match="wheel-tires"):
        VehicleAccessConfig.select(signals=["odometer-traveleddistance"], required=["wheel-tires"])


def test_selecting_a_signal_twice_is_an_error() -> None:
    """A config lists each signal once."""
    twice = [SignalSelection(code="wheel-tires"), SignalSelection(code="wheel-tires", required=True)]
    with pytest.raises(ValidationError, match="'wheel-tires' is selected twice"):
        VehicleAccessConfig(signals=tuple(twice))


@given(configs)
def test_derive_is_sound(config: VehicleAccessConfig) -> None:
    """Every selection's permission is in the derived set, required when the selection is."""
    derived = derive(config)
    for selection in (*config.signals, *config.commands):
        assert _permission_of(selection.key) in derived
        if selection.required:
            assert derived.is_required(_permission_of(selection.key))


@given(configs)
def test_derive_is_minimal(config: VehicleAccessConfig) -> None:
    """Dropping any derived permission leaves a selection uncovered; no permission is required needlessly."""
    derived = derive(config)
    needed = {_permission_of(s.code) for s in config.signals} | {_permission_of(c.name) for c in config.commands}
    for name in derived:
        assert name in needed
    required_by = {_permission_of(s.code) for s in config.signals if s.required} | {
        _permission_of(c.name) for c in config.commands if c.required
    }
    assert set(derived.required_names) == required_by


def test_derive_returns_a_permission_set() -> None:
    """derive() returns the same value type a connection stores."""
    assert isinstance(derive(VehicleAccessConfig.select(commands=["lock"])), PermissionSet)
