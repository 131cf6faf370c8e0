"""Pod limit annotations: quantities, durations, counts, and their errors."""

from __future__ import annotations

import pytest

from runwasm.errors import RunwasmError
from runwasm.limits import (
    cgroup_memory_limit,
    parse_count,
    parse_duration,
    parse_quantity,
    requested,
)


@pytest.mark.parametrize(("text", "expected"), [
    ("64Mi", 64 << 20), ("1Gi", 1 << 30), ("512Ki", 512 << 10), ("500M", 500_000_000),
    ("1k", 1000), ("1048576", 1 << 20), ("1.5Gi", 3 << 29), (" 2Mi ", 2 << 20)])
def test_quantities(text: str, expected: int) -> None:
    assert parse_quantity("k", text) == expected


@pytest.mark.parametrize("text", ["", "Mi", "-1Mi", "0", "64MB", "64mi", "1.2.3Mi", "64 Mi"])
def test_bad_quantities_name_the_key(text: str) -> None:
    with pytest.raises(RunwasmError, match="runwasm.io/max-memory"):
        parse_quantity("runwasm.io/max-memory", text)


@pytest.mark.parametrize(("text", "expected"), [
    ("30s", 30.0), ("500ms", 0.5), ("2m", 120.0), ("1h", 3600.0), ("1.5", 1.5)])
def test_durations(text: str, expected: float) -> None:
    assert parse_duration("k", text) == expected


@pytest.mark.parametrize("text", ["", "s", "0s", "-1s", "10d", "1m30s"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(RunwasmError, match="runwasm.io/timeout"):
        parse_duration("runwasm.io/timeout", text)


def test_counts() -> None:
    assert parse_count("k", "1000") == 1000
    for bad in ("0", "-5", "1e6", "x"):
        with pytest.raises(RunwasmError, match="runwasm.io/fuel"):
            parse_count("runwasm.io/fuel", bad)


def test_requested_from_annotations() -> None:
    limits, asked, sockets = requested({"annotations": {
        "runwasm.io/max-memory": "64Mi", "runwasm.io/timeout": "2s",
        "runwasm.io/fuel": "10", "runwasm.io/sockets": "true"}})
    assert (limits.max_memory, limits.timeout, limits.fuel) == (64 << 20, 2.0, 10)
    assert asked == ["runwasm.io/max-memory", "runwasm.io/timeout", "runwasm.io/fuel"]
    assert sockets
    with pytest.raises(RunwasmError, match="runwasm.io/sockets"):
        requested({"annotations": {"runwasm.io/sockets": "yes"}})


def test_cgroup_limit_is_the_default() -> None:
    assert cgroup_memory_limit({"linux": {"resources": {"memory": {"limit": 1 << 26}}}}) \
        == 1 << 26
    assert cgroup_memory_limit({"linux": {"resources": {"memory": {"limit": -1}}}}) is None
    assert cgroup_memory_limit({}) is None
