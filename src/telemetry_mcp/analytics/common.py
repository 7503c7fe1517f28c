"""What every analysis shares: time ranges, timezones, filters, sessions, rounding, bounds.

SQL here is built from allow-listed identifiers only; every value goes through `Params`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import BaseModel, ConfigDict, Field

from telemetry_mcp.errors import InvalidArgument, unknown

DEFAULT_LIMIT = 20
MAX_LIMIT = 1000
MAX_RANGE_DAYS = 3660  # ten years: anything longer is a mistake, not a question
SUMMARY_CHARS = 600

Limit = Annotated[int, Field(ge=1, le=MAX_LIMIT, description="max rows per list")]
Since = Annotated[
    str | None, Field(description="ISO date/datetime or relative (30m, 24h, 7d, 8w); default 7d")
]
Until = Annotated[str | None, Field(description="exclusive end, like since; default now")]
Timezone = Annotated[str, Field(description="IANA name for calendar buckets")]
Interval = Literal["minute", "hour", "day", "week", "month", "total"]
Period = Literal["day", "week", "month"]

# Filter / group-by fields → SQL column. The only identifiers any analysis puts into SQL.
FIELD_COLUMNS: dict[str, str] = {
    "event_id": "event_id",
    "timestamp": "ts",
    "event_type": "event_type",
    "name": "name",
    "component": "component",
    "user_id": "user_id",
    "session_id": "session_id",
    "severity": "severity",
    "duration_ms": "duration_ms",
    "value": "value",
    "unit": "unit",
    "service": "service",
    "service_version": "service_version",
    "app_version": "service_version",
    "platform": "platform",
    "os": "os",
    "framework": "framework",
    "page": "page",
}
NUMERIC_FIELDS = {"duration_ms", "value"}
PROPERTY_KEY = re.compile(r"^[A-Za-z0-9_\-.$@ :/]{1,128}$")
FilterOp = Literal["eq", "ne", "in", "nin", "gt", "gte", "lt", "lte", "contains"]


class Params:
    """Collects bound values; `add` returns the `$n` placeholder to splice into SQL."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def add(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


# ---------------------------------------------------------------- time ranges and timezones

_RELATIVE = re.compile(r"^\s*(\d{1,7})\s*(s|m|h|d|w)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str, what: str = "duration") -> timedelta:
    """'30m', '24h', '7d', '8w', '90s' → timedelta."""
    m = _RELATIVE.match(text)
    if not m:
        raise InvalidArgument(
            f'{what} "{text}" is not a duration; use a number and a unit s, m, h, d or w (e.g. 14d)'
        )
    return timedelta(seconds=int(m.group(1)) * _UNIT_SECONDS[m.group(2)])


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def check_timezone(tz: str) -> ZoneInfo:
    """Validate an IANA timezone name, suggesting the closest on a typo."""
    if tz not in _zones() and tz != "UTC":
        raise unknown("timezone", tz, sorted(_zones()), limit=0)
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise unknown("timezone", tz, sorted(_zones()), limit=0) from None


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def to_utc(local: datetime, zone: ZoneInfo) -> datetime:
    """Naive local wall time in `zone` → naive UTC."""
    return local.replace(tzinfo=zone).astimezone(UTC).replace(tzinfo=None)


def to_local(utc: datetime, zone: ZoneInfo) -> datetime:
    """Naive UTC → naive local wall time in `zone`."""
    return utc.replace(tzinfo=UTC).astimezone(zone).replace(tzinfo=None)


def iso_local(local: datetime, zone: ZoneInfo) -> str:
    """Naive local wall time → ISO 8601 with the zone's offset at that moment."""
    return local.replace(tzinfo=zone).isoformat()


def parse_instant(text: str, zone: ZoneInfo, now: datetime, what: str) -> datetime:
    """ISO date/datetime (naive = in `zone`) or relative ('7d' = now minus 7 days) → naive UTC."""
    text = text.strip()
    if text.lower() == "now":
        return now
    if _RELATIVE.match(text):
        return now - parse_duration(text, what)
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            d = date.fromisoformat(text)
            return to_utc(datetime(d.year, d.month, d.day), zone)
        parsed = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise InvalidArgument(
            f'{what} "{text[:60]}" is not understood; use an ISO date (2026-01-31), an ISO datetime '
            "(2026-01-31T12:00:00Z) or a relative duration (30m, 24h, 7d, 8w)"
        ) from None
    if parsed.tzinfo is None:
        return to_utc(parsed, zone)
    return parsed.astimezone(UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class TimeRange:
    """Half-open [since, until) in naive UTC, plus the timezone used for calendar buckets."""

    since: datetime
    until: datetime
    tz: str = "UTC"

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)

    @property
    def is_utc(self) -> bool:
        return self.tz in ("UTC", "Etc/UTC", "Etc/Universal", "Universal", "Zulu", "Etc/Zulu")


def parse_range(
    since: str | None,
    until: str | None,
    timezone: str = "UTC",
    *,
    default_since: str = "7d",
    now: datetime | None = None,
) -> TimeRange:
    """Resolve the common `since`/`until`/`timezone` arguments (default: the last 7 days)."""
    for what, value in (("since", since), ("until", until)):
        if value is not None and not value.strip():
            raise InvalidArgument(
                f"{what} is empty: give an ISO date or datetime (2026-11-01, 2026-11-01T12:00) or a relative "
                f"time (30m, 24h, 7d, 8w), or leave {what} out for its default"
            )
    zone = check_timezone(timezone)
    now = now or utcnow()
    end = parse_instant(until, zone, now, "until") if until else now
    start = parse_instant(since, zone, now, "since") if since else end - parse_duration(default_since)
    if start >= end:
        raise InvalidArgument(
            f"empty range: since ({start.isoformat()}Z) must be before until ({end.isoformat()}Z)"
        )
    if end - start > timedelta(days=MAX_RANGE_DAYS):
        raise InvalidArgument(
            f"range of {(end - start).days:,} days is too long; at most {MAX_RANGE_DAYS} days (10 years)"
        )
    if start.year < 1970:
        raise InvalidArgument("since is before 1970-01-01; no event can be that old")
    return TimeRange(start, end, timezone)


def _offset_segments(zone: ZoneInfo, lo: datetime, hi: datetime) -> list[tuple[datetime, int]]:
    """[(utc_start, utc_offset_seconds)] covering [lo, hi): one entry per offset change (DST)."""

    def offset(at: datetime) -> int:
        delta = at.replace(tzinfo=UTC).astimezone(zone).utcoffset()
        return int(delta.total_seconds()) if delta else 0

    segments = [(lo, offset(lo))]
    day = timedelta(days=1)
    cur = lo
    while cur < hi:
        nxt = min(cur + day, hi)
        if offset(nxt) != segments[-1][1]:
            a, b = cur, nxt  # the change happens in (a, b]: bisect to the second
            while (b - a) > timedelta(seconds=1):
                mid = a + (b - a) / 2
                a, b = (mid, b) if offset(mid) == segments[-1][1] else (a, mid)
            segments.append((b.replace(microsecond=0), offset(b)))
        cur = nxt
    return segments


def local_ts(tr: TimeRange, p: Params, column: str = "ts") -> str:
    """SQL for the event time as naive local wall time in the range's timezone.

    Inside the range (plus a margin) the offset is a constant per DST segment, so the conversion is
    a CASE over a few instants instead of an ICU call per row (7x faster at 1 M events); outside
    it, DuckDB's timezone() is exact for any instant.
    """
    if tr.is_utc:
        return column
    lo, hi = tr.since - timedelta(days=45), tr.until + timedelta(days=1)
    segments = _offset_segments(tr.zone, lo, hi)
    if len(segments) > 64:
        return f"timezone({p.add(tr.tz)}, {column}::TIMESTAMPTZ)"
    cases = " ".join(
        f"WHEN {column} < {p.add(end)}::TIMESTAMP THEN {column} + to_seconds({p.add(off)}::BIGINT)"
        for (_, off), (end, _) in zip(segments, [*segments[1:], (hi, 0)], strict=True)
    )
    return (
        f"(CASE WHEN {column} < {p.add(lo)}::TIMESTAMP THEN timezone({p.add(tr.tz)}, {column}::TIMESTAMPTZ) "
        f"{cases} ELSE timezone({p.add(tr.tz)}, {column}::TIMESTAMPTZ) END)"
    )


def bucket_sql(interval: str, tr: TimeRange, p: Params, column: str = "ts") -> str:
    """SQL for the local calendar bucket start (naive local time); weeks start Monday."""
    if interval == "total":
        return f"{p.add(to_local(tr.since, tr.zone))}::TIMESTAMP"
    if interval not in ("minute", "hour", "day", "week", "month"):
        raise unknown("interval", interval, ["minute", "hour", "day", "week", "month", "total"])
    return f"date_trunc('{interval}', {local_ts(tr, p, column)})"


def truncate_local(local: datetime, period: str) -> datetime:
    """Python twin of date_trunc for naive local datetimes (weeks start Monday)."""
    if period == "minute":
        return local.replace(second=0, microsecond=0)
    if period == "hour":
        return local.replace(minute=0, second=0, microsecond=0)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        return day
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    raise ValueError(period)


def step_local(local: datetime, period: str, n: int = 1) -> datetime:
    """Advance a bucket start by n periods (months by calendar)."""
    if period == "month":
        months = local.year * 12 + (local.month - 1) + n
        return local.replace(year=months // 12, month=months % 12 + 1)
    seconds = {"minute": 60, "hour": 3600, "day": 86400, "week": 604800}[period]
    return local + timedelta(seconds=seconds * n)


def local_buckets(tr: TimeRange, period: str, max_buckets: int = 5000) -> list[datetime]:
    """Every local bucket start overlapping [since, until), in order."""
    zone = tr.zone
    first = truncate_local(to_local(tr.since, zone), period)
    last_local = to_local(tr.until, zone)
    out = []
    cur = first
    while cur < last_local:
        out.append(cur)
        if len(out) > max_buckets:
            raise InvalidArgument(
                f"{period} buckets over this range exceed {max_buckets}; use a coarser interval or a shorter range"
            )
        cur = step_local(cur, period)
    return out


# ---------------------------------------------------------------- filters


class Filter(BaseModel):
    """One condition: `field` is an event column or `properties.<key>`."""

    model_config = ConfigDict(extra="forbid")

    field: str = Field(description="an event column or properties.<key>")
    op: FilterOp = "eq"
    value: Any = Field(description="a list for in/nin")


Filters = Annotated[
    list[Filter] | None,
    Field(max_length=50, description="conditions {field, op, value} every event must meet"),
]


_SYMBOL_OPS = {"=": "eq", "==": "eq", "!=": "ne", ">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}
_EXPR = re.compile(
    r"^\s*(?P<field>[^\s=!<>]+)\s*(?P<op>==|!=|>=|<=|=|>|<|\s[a-z]+\s)\s*(?P<value>.*?)\s*$", re.S
)
FILTER_OPS: tuple[str, ...] = ("eq", "ne", "in", "nin", "gt", "gte", "lt", "lte", "contains")


def parse_filter_expression(text: str) -> Filter:
    """One `--filter` of the command line → the same Filter the tools' `filters` argument takes.

    Either the tools' JSON object (`{"field": "component", "op": "eq", "value": "Button"}`) or
    `FIELD OP VALUE`: OP a word of the tools' (eq ne in nin gt gte lt lte contains, spaces around it)
    or = != > >= < <=; VALUE JSON when it parses as JSON (numbers, true, "quoted"), else the text
    as it is; for in/nin a JSON list or values separated by commas. The field and the value are
    checked when the filter is compiled (compile_filters), with the tools' errors.
    """
    raw = text.strip()
    if raw.startswith("{"):
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise InvalidArgument(f"filter {raw[:60]!r} is not a JSON object: {exc}") from None
        if not isinstance(data, dict) or "field" not in data or "value" not in data:
            raise InvalidArgument(f'filter {raw[:60]!r}: expected {{"field": …, "op": …, "value": …}}')
        field, op, value = data["field"], data.get("op", "eq"), data["value"]
    else:
        m = _EXPR.match(raw)
        if m is None:
            raise InvalidArgument(
                f"filter {raw[:60]!r} is not understood; write FIELD OP VALUE, e.g. 'component = Button', "
                "'duration_ms > 250', 'platform in web,mobile' (or the tools' JSON object)"
            )
        field, op_text, text_value = m.group("field"), m.group("op").strip(), m.group("value")
        op = _SYMBOL_OPS.get(op_text, op_text)
        value = _expression_value(text_value, list_wanted=op in ("in", "nin"))
    if op not in FILTER_OPS:
        raise unknown("filter op", str(op), FILTER_OPS)
    if not isinstance(field, str):
        raise InvalidArgument(f"filter {raw[:60]!r}: field must be a string")
    return Filter(field=field, op=op, value=value)


def _expression_value(text: str, *, list_wanted: bool) -> Any:
    try:
        value = json.loads(text)
    except ValueError:
        value = text
    if list_wanted and not isinstance(value, list):
        value = [_expression_value(part.strip(), list_wanted=False) for part in text.split(",")]
    return value


def field_sql(field: str, p: Params, *, numeric: bool = False) -> str:
    """Allow-listed SQL for a field name; `properties.<key>` reads the scrubbed JSON."""
    if field in FIELD_COLUMNS:
        return FIELD_COLUMNS[field]
    if field.startswith("properties."):
        key = field[len("properties.") :]
        if not PROPERTY_KEY.match(key):
            raise InvalidArgument(
                f'property key "{key[:60]}" is not allowed; keys are 1-128 characters of letters, digits, '
                "and _ - . $ @ : / or space"
            )
        path = p.add("$." + ".".join(f'"{part}"' for part in key.split(".")))
        if numeric:
            return f"TRY_CAST(json_extract_string(properties, {path}) AS DOUBLE)"
        return f"json_extract_string(properties, {path})"
    raise unknown("field", field, [*FIELD_COLUMNS, "properties.<key>"])


def _scalar(value: Any, field: str) -> Any:
    if isinstance(value, bool | int | float | str):
        return value
    raise InvalidArgument(
        f"filter on {field}: value must be a string, number or boolean, got {type(value).__name__}"
    )


def compile_filters(filters: Sequence[Filter] | None, p: Params) -> str:
    """Filters → 'AND …' SQL (empty string when none). Values are always bound."""
    parts: list[str] = []
    for f in filters or []:
        value = f.value
        if f.op in ("in", "nin"):
            if not isinstance(value, list) or not value or len(value) > 1000:
                raise InvalidArgument(
                    f"filter on {f.field}: op {f.op} needs a non-empty list of at most 1000 values"
                )
            values = [_scalar(v, f.field) for v in value]
            numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
            col = field_sql(f.field, p, numeric=numeric and f.field not in FIELD_COLUMNS)
            cast_values = [float(v) if numeric else str(v) for v in values]
            list_sql = f"{p.add(cast_values)}::{'DOUBLE' if numeric else 'VARCHAR'}[]"
            expr = f"list_contains({list_sql}, {col})"
            parts.append(expr if f.op == "in" else f"({col} IS NULL OR NOT {expr})")
            continue
        value = _scalar(value, f.field)
        if f.op == "contains":
            col = field_sql(f.field, p)
            parts.append(f"contains(lower({col}::VARCHAR), lower({p.add(str(value))}))")
            continue
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        if f.op in ("gt", "gte", "lt", "lte") and not numeric and f.field != "timestamp":
            try:
                value = float(value)
                numeric = True
            except (TypeError, ValueError):
                raise InvalidArgument(
                    f"filter on {f.field}: op {f.op} needs a number (or an ISO datetime for timestamp)"
                ) from None
        sql_op = {"eq": "=", "ne": "IS DISTINCT FROM", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[f.op]
        if f.field == "timestamp":
            if not isinstance(value, str):
                raise InvalidArgument("filter on timestamp: value must be an ISO datetime string")
            inst = parse_instant(value, ZoneInfo("UTC"), utcnow(), "filter value")
            parts.append(f"ts {sql_op} {p.add(inst)}::TIMESTAMP")
        elif numeric:
            col = field_sql(f.field, p, numeric=True)
            if f.field in FIELD_COLUMNS and f.field not in NUMERIC_FIELDS:
                col = f"TRY_CAST({col} AS DOUBLE)"
            parts.append(f"{col} {sql_op} {p.add(float(value))}")
        else:
            col = field_sql(f.field, p)
            if f.field in NUMERIC_FIELDS:
                raise InvalidArgument(f"filter on {f.field}: value must be a number")
            text = str(value).lower() if isinstance(value, bool) else str(value)
            parts.append(f"{col}::VARCHAR {sql_op} {p.add(text)}")
    return "".join(f" AND {x}" for x in parts)


def range_where(tr: TimeRange, p: Params, column: str = "ts") -> str:
    return f"{column} >= {p.add(tr.since)}::TIMESTAMP AND {column} < {p.add(tr.until)}::TIMESTAMP"


def sessionized(source_where: str, timeout_minutes: float, p: Params) -> str:
    """SQL (a subquery) of the events matching `source_where`, each with its `session_key`.

    Explicit sessions are keyed by their session_id; the others are derived per actor (a gap longer than
    the session timeout starts a new one; they never merge with explicit sessions). The store keeps
    the keys current (Store.refresh_sessions runs before every guarded read), so this is a plain scan.
    `timeout_minutes` is the store's setting and is accepted for the callers' clarity only.
    """
    del timeout_minutes, p
    return f"(SELECT * FROM events WHERE {source_where})"


# ---------------------------------------------------------------- numbers and text


def r4(x: float | int | None) -> float | None:
    """Round to 4 decimals; None and non-finite values become None."""
    if x is None:
        return None
    f = float(x)
    if math.isnan(f) or math.isinf(f):
        return None
    return round(f, 4)


def rate(num: float | int, den: float | int) -> float:
    """A fraction in [0, 1], 0 when the denominator is 0."""
    return round(float(num) / float(den), 4) if den else 0.0


def clip(text: str, limit: int = SUMMARY_CHARS) -> str:
    """Keep a summary within the SPEC's 600 characters."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 100:.1f} %"


def check_known(kind: str, values: Iterable[str] | None, known: Iterable[str]) -> None:
    """Refuse a value absent from the data, with the closest known one suggested."""
    pool = set(known)
    for v in values or []:
        if v not in pool:
            raise unknown(kind, v, pool)


def iso_utc(dt: datetime | None) -> str | None:
    return None if dt is None else dt.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z")
