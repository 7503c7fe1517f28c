"""The shared anomaly detector on synthetic series: what it must flag and what it must not."""

from __future__ import annotations

import numpy as np

from telemetry_mcp.analytics.detector import detect, threshold_for


def hourly_counts(days: int = 28, seed: int = 3) -> np.ndarray:
    """Poisson counts with a daily shape and quiet weekends (a weekly season)."""
    rng = np.random.default_rng(seed)
    hours = np.arange(days * 24)
    daily = 20 + 15 * np.sin(2 * np.pi * (hours % 24 - 6) / 24)
    weekend = np.where((hours // 24) % 7 >= 5, 0.5, 1.0)
    return rng.poisson(daily * weekend).astype(float)


def test_a_quiet_seasonal_series_has_no_anomalies() -> None:
    # Weekends at half the volume are the season, not an anomaly.
    assert detect(hourly_counts(), interval="hour", kind="count") == []


def test_a_one_hour_spike_is_one_anomaly_of_one_bucket_scored_highest() -> None:
    x = hourly_counts()
    x[400] += 60
    runs = detect(x, interval="hour", kind="count")
    assert [(r.start, r.buckets, r.direction) for r in runs[:1]] == [(400, 1, "up")]
    assert runs[0].observed == x[400]
    assert runs[0].lower <= runs[0].expected <= runs[0].upper < runs[0].observed


def test_a_level_shift_lasts_many_buckets() -> None:
    # Six weeks of history, then the last two days run at twice the volume.
    x = hourly_counts(days=44)
    x[-48:] = x[-48:] * 2 + 10
    runs = detect(x, interval="hour", kind="count")
    longest = max(runs, key=lambda r: r.buckets)
    # The multi-scale windows that reveal it may begin a few hours early; it lasts to the end.
    assert longest.direction == "up" and len(x) - 48 - 6 <= longest.start <= len(x) - 48
    assert longest.end == len(x) - 1


def test_a_drop_is_flagged_down() -> None:
    x = hourly_counts()
    x[300:310] = 0
    assert any(
        r.direction == "down" and 295 <= r.start <= 310 for r in detect(x, interval="hour", kind="count")
    )


def test_sparse_counts_are_judged_as_poisson_not_by_their_mad() -> None:
    rng = np.random.default_rng(1)
    x = rng.poisson(0.8, 60).astype(float)
    assert detect(x, interval="day", kind="count") == []
    x[40] = 12
    assert [r.start for r in detect(x, interval="day", kind="count")] == [40]


def test_too_few_points_give_nothing_and_long_series_need_a_higher_z() -> None:
    assert detect(np.array([1.0, 50.0, 1.0]), interval="day", kind="count") == []
    assert threshold_for(30) == 3.5 and threshold_for(5000) > 4.0
