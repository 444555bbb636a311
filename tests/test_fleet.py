"""The simulated fleet: deterministic for a seed, capabilities that follow powertrain, make and model year."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.catalog import get_catalog
from schemas.powertrain import Powertrain
from simulator.errors import MixError
from simulator.fleet import default_mix, generate_fleet, load_mix

FUEL = {"internalcombustionengine-fuellevel", "internalcombustionengine-oillife"}
BATTERY = {"tractionbattery-stateofcharge", "charge-ischarging", "start-charge"}


def test_same_seed_same_fleet_other_seed_other_fleet() -> None:
    """Generation is a pure function of count, seed and mix."""
    assert generate_fleet(300, seed=5) == generate_fleet(300, seed=5)
    assert generate_fleet(300, seed=5) != generate_fleet(300, seed=6)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**32))
def test_capabilities_follow_powertrain_make_and_year(seed: int) -> None:
    """For any seed: BEVs have no fuel, ICEs and HEVs no charging, PHEVs both; make and year lacks are applied."""
    mix = default_mix()
    makes = {m.name: m for m in mix.makes}
    for vehicle in generate_fleet(200, seed=seed):
        caps = vehicle.capabilities
        if vehicle.powertrain is Powertrain.BEV:
            assert not caps & FUEL
            assert caps >= BATTERY
        elif vehicle.powertrain in (Powertrain.ICE, Powertrain.HEV):
            assert not caps & BATTERY
            assert "internalcombustionengine-fuellevel" in caps
        elif vehicle.powertrain is Powertrain.PHEV:
            assert caps >= BATTERY | {"internalcombustionengine-fuellevel"}
        make = makes[vehicle.make]
        assert not caps & make.lacks
        assert make.years[0] <= vehicle.year <= make.years[1]
        for rule in mix.older:
            if vehicle.year < rule.before:
                assert not caps & rule.lacks
        if vehicle.powertrain is not Powertrain.UNKNOWN:
            assert any(m.name == vehicle.model and m.powertrain is vehicle.powertrain for m in make.models)


def test_mix_shares_show_in_a_large_fleet() -> None:
    """Powertrain shares of 10,000 vehicles are within two points of the mix, UNKNOWN about 1 %."""
    mix = default_mix()
    total = sum(mix.powertrains.values())
    counts = Counter(v.powertrain for v in generate_fleet(10_000, seed=1))
    for powertrain, share in mix.powertrains.items():
        assert abs(counts[powertrain] / 10_000 - share / total) < 0.02
    assert 40 <= counts[Powertrain.UNKNOWN] <= 180


def test_older_vehicles_lack_more() -> None:
    """Model years before the cut-off lose the later telematics features."""
    fleet = generate_fleet(2000, seed=3)
    old = [v for v in fleet if v.year < 2018 and v.powertrain is not Powertrain.UNKNOWN]
    new = [v for v in fleet if v.year >= 2020 and v.make == "Tesla"]
    assert old
    assert new
    assert all("wheel-tires" not in v.capabilities for v in old)
    assert all("set-destination" in v.capabilities for v in new)
    catalog = get_catalog()
    assert all(v.capabilities <= catalog.physically_possible(v.powertrain) for v in fleet)


def test_a_custom_mix_file(tmp_path: Path) -> None:
    """A mix file with only BEVs of one make gives exactly that."""
    path = tmp_path / "mix.toml"
    path.write_text(
        '[powertrains]\nBEV = 1\n[[makes]]\nname = "Rivian"\nshare = 1\nyears = [2022, 2025]\n'
        'lacks = ["wheel-tires"]\nmodels = [{ name = "R1T", powertrain = "BEV" }]\n'
    )
    fleet = generate_fleet(50, seed=0, mix=load_mix(path))
    assert {(v.make, v.model, v.powertrain) for v in fleet} == {("Rivian", "R1T", Powertrain.BEV)}
    assert all("wheel-tires" not in v.capabilities for v in fleet)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[powertrains\n", "not valid TOML"),
        (
            '[powertrains]\nBEV = 1\n[[makes]]\nname = "X"\nshare = 1\nyears = [2020, 2021]\nmodels = []\n',
            "makes[0].models",
        ),
        (
            '[powertrains]\nBEV = 1\n[[makes]]\nname = "X"\nshare = 1\nyears = [2020, 2021]\nlacks = ["wheel-tyres"]\n'
            'models = [{ name = "Y", powertrain = "BEV" }]\n',
            "wheel-tires",
        ),
        (
            '[powertrains]\nICE = 1\n[[makes]]\nname = "X"\nshare = 1\nyears = [2020, 2021]\n'
            'models = [{ name = "Y", powertrain = "BEV" }]\n',
            "no make has a ICE model",
        ),
    ],
)
def test_a_bad_mix_file_names_the_problem(tmp_path: Path, text: str, message: str) -> None:
    """Invalid TOML, an empty model list, a misspelt signal or an unsellable powertrain: a MixError saying which."""
    path = tmp_path / "mix.toml"
    path.write_text(text)
    with pytest.raises(MixError, match=re.escape(message)):
        load_mix(path)
