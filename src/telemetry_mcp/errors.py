"""Typed errors. Every message says what was wrong and what is accepted instead."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class TelemetryError(Exception):
    """Base of every error the product reports to a user or an agent."""


class ConfigError(TelemetryError):
    """A setting (flag or environment variable) has an invalid value."""


class StoreLockedError(TelemetryError):
    """Another process holds the DuckDB store file."""


class StoreBusyError(TelemetryError):
    """The store is in use in a way that keeps an operation (compaction) from running now; retry."""


class InvalidArgument(TelemetryError):
    """A tool argument is out of bounds, unknown, or malformed."""


class QueryLimitError(TelemetryError):
    """A query was cancelled or refused by a guard rail (time, rows, bytes)."""


def did_you_mean(value: str, choices: Iterable[str]) -> str:
    """Return ' — did you mean "X"?' for the closest choice, or '' when none is close."""
    pool = [c for c in choices if c is not None]
    lowered = {c.lower(): c for c in pool}
    close = difflib.get_close_matches(value.lower(), list(lowered), n=1, cutoff=0.6)
    return f' — did you mean "{lowered[close[0]]}"?' if close else ""


def unknown(kind: str, value: str, choices: Iterable[str], limit: int = 30) -> InvalidArgument:
    """Build the standard 'unknown X "v" — did you mean …? Accepted: …' error."""
    pool = sorted({c for c in choices if c is not None})
    shown = ", ".join(f'"{c}"' for c in pool[:limit])
    more = f" (and {len(pool) - limit} more)" if len(pool) > limit else ""
    accepted = f" Accepted: {shown}{more}." if pool else ""
    hint = did_you_mean(value, pool)
    return InvalidArgument(f'unknown {kind} "{value}"{hint}{"" if hint else "."}{accepted}')
