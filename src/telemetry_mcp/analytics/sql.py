"""run_sql: read-only SQL over the events table, with row, character and time limits.

Defence in layers, each enough on its own for what it covers:
1. DuckDB parses the text: exactly one statement, of type SELECT (WITH … SELECT, DESCRIBE and
   SUMMARIZE parse as SELECT too).
2. Its syntax tree (json_serialize_sql) is walked: every table reference must be `events` or a CTE of
   the query (a CTE may not reuse the name of another table or view), and table functions are limited
   to generators (range, generate_series, unnest) — no read_csv/read_parquet/glob/duckdb_* … So the
   `meta` table (which holds the user-id hashing salt) and system catalogs stay out of reach.
3. The store runs with enable_external_access=False (no file or network access at all) and the
   cursor has Python replacement scans switched off (no reaching into Python variables).
4. The query runs in the store's guarded cursor: cancelled after query_timeout_seconds.
Results: at most `limit` rows (limit + 1 are fetched to know more existed) and at most
sql_max_bytes characters of JSON rows; either cut sets `truncated`.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import uuid
from collections.abc import Iterator
from typing import Any

import duckdb
from pydantic import BaseModel, Field

from telemetry_mcp.analytics.common import clip, r4
from telemetry_mcp.errors import InvalidArgument
from telemetry_mcp.store import Store

EVENTS_TABLE = "events"
ALLOWED_TABLE_FUNCTIONS = frozenset({"range", "generate_series", "unnest"})
MAX_SQL_CHARS = 20_000
ONLY_EVENTS = "run_sql reads only the events table (no files, network, other tables or system catalogs)"


class Column(BaseModel):
    name: str
    type: str = Field(description="DuckDB type of the column")


class SqlResult(BaseModel):
    columns: list[Column]
    rows: list[list[Any]] = Field(
        description="row values in column order; timestamps as ISO 8601 UTC, floats rounded to 4 decimals"
    )
    row_count: int = Field(description="rows returned")
    truncated: bool = Field(
        description="true when more rows existed than limit, or the character cap cut them"
    )
    summary: str


# ---------------------------------------------------------------- checking the statement


def single_select(sql: str) -> str:
    """The text of the one SELECT statement in `sql`, or InvalidArgument saying why not."""
    if not sql.strip():
        raise InvalidArgument("sql is empty; pass one SELECT statement, e.g. SELECT count(*) FROM events")
    if len(sql) > MAX_SQL_CHARS:
        raise InvalidArgument(f"sql is {len(sql):,} characters; at most {MAX_SQL_CHARS:,}")
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise InvalidArgument(f"sql does not parse: {_first_line(exc)}") from None
    if len(statements) != 1:
        raise InvalidArgument(
            f"sql holds {len(statements)} statements; run_sql accepts exactly one SELECT (or WITH … SELECT)"
        )
    kind = statements[0].type
    if kind != duckdb.StatementType.SELECT:
        raise InvalidArgument(
            f"only SELECT (or WITH … SELECT) queries are allowed, not {kind.name}: run_sql is read-only"
        )
    return sql


def _walk(node: Any, ctes: set[str]) -> Iterator[dict[str, Any]]:
    """Every dict in the syntax tree, collecting CTE names on the way."""
    stack = [node]
    while stack:
        cur = stack.pop()
        if isinstance(cur, dict):
            cte_map = cur.get("cte_map")
            if isinstance(cte_map, dict):
                ctes.update(str(entry.get("key", "")).lower() for entry in cte_map.get("map", []))
            yield cur
            stack.extend(cur.values())
        elif isinstance(cur, list):
            stack.extend(cur)


def check_tree(tree: dict[str, Any], relations: set[str]) -> None:
    """Refuse table functions and tables other than events / the query's own CTEs."""
    if tree.get("error"):
        raise InvalidArgument(
            f"only plain SELECT queries are allowed ({tree.get('error_message', 'not a SELECT')}); "
            "PIVOT/UNPIVOT statements are not supported, use a SELECT with FILTER or CASE"
        )
    ctes: set[str] = set()
    nodes = list(_walk(tree, ctes))
    shadowing = sorted(c for c in ctes if c in relations and c != EVENTS_TABLE)
    if shadowing:
        raise InvalidArgument(
            f'CTE name "{shadowing[0]}" is the name of a system table or view; rename the CTE'
        )
    for node in nodes:
        kind = node.get("type")
        if kind == "TABLE_FUNCTION":
            fn = node.get("function") or {}
            name = str(fn.get("function_name", "?")).lower()
            if name not in ALLOWED_TABLE_FUNCTIONS or fn.get("schema") or fn.get("catalog"):
                raise InvalidArgument(
                    f"table function {name}() is not allowed: {ONLY_EVENTS}. "
                    f"Allowed table functions: {', '.join(sorted(ALLOWED_TABLE_FUNCTIONS))}"
                )
        elif kind == "BASE_TABLE":
            table = str(node.get("table_name", "")).lower()
            schema = str(node.get("schema_name", "")).lower()
            catalog = str(node.get("catalog_name", ""))
            own_cte = not schema and not catalog and table in ctes
            events = table == EVENTS_TABLE and schema in ("", "main") and not catalog
            if not (own_cte or events):
                qualified = ".".join(x for x in (catalog, schema, table) if x)
                raise InvalidArgument(f'table "{qualified}" is not available: {ONLY_EVENTS}')
        elif kind == "SHOW_REF" and node.get("query") is None:
            raise InvalidArgument(f"SHOW is not available: {ONLY_EVENTS}; DESCRIBE events lists its columns")


RELATIONS_SQL = (
    "SELECT lower(table_name) FROM duckdb_tables() UNION SELECT lower(view_name) FROM duckdb_views()"
)


# ---------------------------------------------------------------- values


def json_safe(value: Any) -> Any:
    """A DuckDB value as plain JSON: ISO timestamps (UTC 'Z'), rounded floats, hex bytes."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return r4(value) if not (math.isnan(value) or math.isinf(value)) else None
    if isinstance(value, decimal.Decimal):
        return r4(float(value))
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value.isoformat() + "Z"
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return r4(value.total_seconds())
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    return str(value)


# ---------------------------------------------------------------- running


def run(store: Store, sql: str, limit: int) -> SqlResult:
    """Run one checked SELECT under the time guard; at most `limit` rows and sql_max_bytes characters."""
    text = single_select(sql)
    max_chars = store.settings.sql_max_bytes
    with store.guarded() as cur:
        cur.execute("SET python_enable_replacements = false")
        row = cur.execute("SELECT json_serialize_sql($1)", [text]).fetchone()
        tree = json.loads(row[0]) if row else {"error": True}
        relations = {r[0] for r in cur.execute(RELATIONS_SQL).fetchall()}
        check_tree(tree, relations)
        try:
            res = cur.execute(text)
            columns = [Column(name=str(d[0]), type=str(d[1])) for d in res.description or []]
            raw = res.fetchmany(limit + 1)
        except duckdb.InterruptException:
            raise
        except duckdb.Error as exc:
            raise InvalidArgument(f"query failed: {_first_line(exc)}") from None

    truncated = len(raw) > limit
    rows: list[list[Any]] = []
    used = len(json.dumps([c.name for c in columns]))
    cut_by_chars = False
    for r in raw[:limit]:
        safe = [json_safe(v) for v in r]
        size = len(json.dumps(safe, ensure_ascii=False)) + 1
        if used + size > max_chars:
            truncated = cut_by_chars = True
            break
        used += size
        rows.append(safe)
    return SqlResult(
        columns=columns,
        rows=rows,
        row_count=len(rows),
        truncated=truncated,
        summary=summarize(columns, rows, truncated, cut_by_chars, limit, max_chars),
    )


def summarize(
    columns: list[Column], rows: list[list[Any]], truncated: bool, by_chars: bool, limit: int, max_chars: int
) -> str:
    shape = f"{len(rows):,} row{_plural(len(rows))} × {len(columns)} column{_plural(len(columns))}"
    if by_chars:
        why = f" (cut at the {max_chars:,}-character cap; select fewer columns or aggregate)"
    elif truncated:
        why = f" (more rows exist; limit {limit})"
    else:
        why = ""
    text = f"{shape}{why}."
    if rows and len(columns) <= 12:
        shown = rows if len(rows) <= 3 else rows[:1]
        preview = "; ".join(
            ", ".join(
                f"{c.name}={json.dumps(v, ensure_ascii=False)[:60]}" for c, v in zip(columns, r, strict=True)
            )
            for r in shown
        )
        text += f" {preview}" if len(rows) <= 3 else f" First row: {preview}"
    return clip(text)


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__


def _plural(n: int) -> str:
    return "" if n == 1 else "s"
