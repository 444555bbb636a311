"""The API process's short memory of grants and connections (services/http/lookups.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from services.http.lookups import Lookups, TtlMemory
from services.registry import TokenGrant


class Loader:
    """Counts loads; answers from a dict (None for what it does not hold)."""

    def __init__(self, values: dict[str, str | None]) -> None:
        self.values, self.calls = values, 0

    def __call__(self, key: str) -> Callable[[], Awaitable[str | None]]:
        async def load() -> str | None:
            self.calls += 1
            return self.values.get(key)

        return load


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_a_value_is_remembered_until_its_ttl_passes() -> None:
    clock, loader = Clock(), Loader({"a": "A"})
    memory: TtlMemory[str, str] = TtlMemory(1.0, clock=clock)
    assert await memory.get_or_load("a", loader("a")) == "A"
    loader.values["a"] = "A2"
    clock.now += 0.9
    assert await memory.get_or_load("a", loader("a")) == "A"
    assert loader.calls == 1
    clock.now += 0.2
    assert await memory.get_or_load("a", loader("a")) == "A2"
    assert loader.calls == 2


async def test_a_miss_is_not_remembered() -> None:
    loader = Loader({})
    memory: TtlMemory[str, str] = TtlMemory(5.0)
    for _ in range(3):
        assert await memory.get_or_load("unknown", loader("unknown")) is None
    assert loader.calls == 3
    assert len(memory) == 0


async def test_a_ttl_of_zero_remembers_nothing() -> None:
    loader = Loader({"a": "A"})
    memory: TtlMemory[str, str] = TtlMemory(0.0)
    await memory.get_or_load("a", loader("a"))
    await memory.get_or_load("a", loader("a"))
    assert loader.calls == 2
    assert len(memory) == 0


async def test_the_oldest_entries_go_first_when_full() -> None:
    loader = Loader({k: k.upper() for k in "abcd"})
    memory: TtlMemory[str, str] = TtlMemory(60.0, max_entries=3)
    for key in "abcd":
        await memory.get_or_load(key, loader(key))
    assert len(memory) == 3
    await memory.get_or_load("a", loader("a"))  # dropped: loaded again
    await memory.get_or_load("d", loader("d"))  # kept
    assert loader.calls == 5


async def test_forget_all_empties_both_memories() -> None:
    lookups = Lookups(60.0)

    async def grant() -> TokenGrant:
        return TokenGrant("app", "user")

    await lookups.grants.get_or_load("hash", grant)
    assert len(lookups.grants) == 1
    lookups.forget_all()
    assert len(lookups.grants) == 0
    assert len(lookups.connections) == 0
