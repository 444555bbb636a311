"""The load test's latency histogram: percentiles within 1 % of the exact ones, never below them."""

from __future__ import annotations

import random

import pytest

from simulator.histogram import LatencyHistogram


def test_percentiles_match_exact_ones_within_one_percent() -> None:
    """Against sorted samples of a skewed distribution: p50, p99, p99.9 within 1 %, not understated; max exact."""
    rng = random.Random(4)
    samples = sorted(rng.lognormvariate(1.0, 1.2) for _ in range(50_000))
    histogram = LatencyHistogram()
    for value in samples:
        histogram.record(value)
    for quantile in (0.5, 0.9, 0.99, 0.999):
        exact = samples[int(quantile * len(samples)) - 1]
        assert exact <= histogram.percentile(quantile) <= exact * 1.0101
    assert histogram.percentile(1.0) == pytest.approx(samples[-1])
    assert histogram.max == samples[-1]


def test_merge_adds_counts_and_empty_is_zero() -> None:
    """Two halves merged give the whole; an empty histogram reports 0."""
    low, high, whole = LatencyHistogram(), LatencyHistogram(), LatencyHistogram()
    for value in range(1, 101):
        (low if value <= 50 else high).record(float(value))
        whole.record(float(value))
    low.merge(high)
    assert low.count == 100
    assert low.percentile(0.5) == whole.percentile(0.5)
    assert LatencyHistogram().percentile(0.99) == 0.0
