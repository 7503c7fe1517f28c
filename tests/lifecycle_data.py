"""Synthetic events for the lifecycle tests: many users, anonymous and session-less ones, odd values."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

TYPES = ("page_view", "component_load", "user_interaction", "performance", "error", "animation_play")


def events(
    n: int, start: datetime, days: float = 30.0, users: int = 500, seed: int = 7
) -> list[dict[str, Any]]:
    """n events spread evenly over `days` from `start` (naive UTC), in time order."""
    rng = random.Random(seed)
    step = timedelta(days=days) / n
    out: list[dict[str, Any]] = []
    for i in range(n):
        kind = TYPES[i % len(TYPES)]
        ev: dict[str, Any] = {
            "event_id": f"ev-{seed}-{i}",
            "timestamp": (start + step * i).isoformat(timespec="microseconds") + "Z",
            "event_type": kind,
            "component": rng.choice(("Button", "Modal", "Chart", "Täble ✓")),
            "platform": rng.choice(("web", "mobile", None)),
            "service_version": rng.choice(("1.0.0", "1.1.0")),
        }
        if i % 11:
            ev["user_id"] = f"user-{rng.randrange(users)}"
        if i % 3 == 0:
            ev["session_id"] = f"s-{i // 30}"
        if kind == "performance":
            ev["name"], ev["value"] = "fps", round(rng.uniform(20, 60), 3)
        else:
            ev["duration_ms"] = rng.expovariate(1 / 120)  # full float precision
        if i % 5 == 0:
            ev["properties"] = {"n": i, "nested": {"list": [1, 2.5, None, "x"]}, "note": 'ünïcode "q"'}
        if i % 997 == 0:
            ev["page"] = f"/profile/{i}abc123?tab=x"  # anonymised at ingest
            ev["properties"] = {"contact": "ann@example.com"}  # scrubbed at ingest
        out.append(ev)
    return out
