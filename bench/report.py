"""Targets (judged in the report only, never in the exit code) and the Markdown rendering."""

from __future__ import annotations

from typing import Any

from common import mib

GIB = 2**30
INGEST_INPROC_TARGETS = {10_000: 100_000.0, 1_000: 80_000.0}  # batch → events/s (issue 10)
INGEST_STDIO_TARGETS = {1_000: 35_000.0}  # issue 10
IMPORT_JSONL_TARGET = 150_000.0  # events/s (issue 10)
IMPORT_RSS_MAX = 600 * 2**20  # peak RSS of `telemetry-mcp import`, whatever the file size (issue 10)
OVERHEAD_MAX = 1.3
OVERHEAD_SIZE = 10_000_000
MEMORY_MAX = 1.5 * GIB
MEMORY_SIZE = 10_000_000
COLD_START_MAX_RATIO = 1.5
DB_MB_PER_MILLION = 45.0  # MB = 10^6 bytes (issue 10)


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "**MISSED**")


def _num(x: float | None, digits: int = 0, suffix: str = "") -> str:
    if x is None:
        return "—"
    return f"{x:,.{digits}f}{suffix}"


def _ms(x: float | None) -> str:
    if x is None:
        return "—"
    return f"{x:,.0f} ms" if x >= 100 else f"{x:,.1f} ms"


def evaluate_targets(r: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per judged figure: what, measured, target, met (True/False)."""
    rows: list[dict[str, Any]] = []

    def add(what: str, measured: str, target: str, ok: bool | None) -> None:
        rows.append({"what": what, "measured": measured, "target": target, "met": ok})

    for item in r.get("ingest_inprocess", []):
        goal = INGEST_INPROC_TARGETS.get(item.get("batch", 0))
        if goal and item.get("events_per_s") is not None:
            add(
                f"ingest in process, batches of {item['batch']:,}",
                f"{item['events_per_s']:,.0f} events/s",
                f"≥ {goal:,.0f} events/s",
                item["events_per_s"] >= goal,
            )
    for item in r.get("ingest_stdio", []):
        goal = INGEST_STDIO_TARGETS.get(item.get("batch", 0))
        if goal and item.get("events_per_s") is not None:
            add(
                f"ingest over stdio MCP, batches of {item['batch']:,}",
                f"{item['events_per_s']:,.0f} events/s",
                f"≥ {goal:,.0f} events/s",
                item["events_per_s"] >= goal,
            )
    for i in r.get("imports", []):
        if i.get("events_per_s") is not None:
            add(
                f"`telemetry-mcp import` of {i['dataset']} JSONL",
                f"{i['events_per_s']:,.0f} events/s",
                f"≥ {IMPORT_JSONL_TARGET:,.0f} events/s",
                i["events_per_s"] >= IMPORT_JSONL_TARGET,
            )
        if i.get("peak_rss_bytes"):
            add(
                f"`telemetry-mcp import` of {i['dataset']}, peak RSS",
                mib(i["peak_rss_bytes"]),
                f"≤ {mib(IMPORT_RSS_MAX)}",
                i["peak_rss_bytes"] <= IMPORT_RSS_MAX,
            )
    for label, q in r.get("queries", {}).items():
        events = q.get("events", 0)
        for c in q.get("cases", []):
            if c.get("target_ms") is not None and c.get("ours"):
                median = c["ours"]["median_ms"]
                add(
                    f"{c['name']} at {label}, median via MCP",
                    _ms(median),
                    f"≤ {_ms(c['target_ms'])}",
                    median <= c["target_ms"],
                )
            if events == OVERHEAD_SIZE and c.get("ratio") is not None:
                add(
                    f"{c['name']} at {label}, overhead over plain DuckDB",
                    f"{c['ratio']:.2f}×",
                    f"≤ {OVERHEAD_MAX}×",
                    c["ratio"] <= OVERHEAD_MAX,
                )
        if events == MEMORY_SIZE and q.get("server_peak_rss_bytes"):
            peak = q["server_peak_rss_bytes"]
            add(f"server peak memory, queries at {label}", mib(peak), "≤ 1.5 GiB", peak <= MEMORY_MAX)
    cold = r.get("cold_start", {})
    if cold.get("ratio") is not None:
        add(
            "cold start vs trivial MCPServer",
            f"{cold['ratio']:.2f}×",
            f"≤ {COLD_START_MAX_RATIO}×",
            cold["ratio"] <= COLD_START_MAX_RATIO,
        )
    for label, s in r.get("storage", {}).items():
        if s.get("mb_per_million") is not None:
            add(
                f"database size at {label}",
                f"{s['mb_per_million']:.1f} MB per million events",
                f"≤ {DB_MB_PER_MILLION:.0f} MB",
                s["mb_per_million"] <= DB_MB_PER_MILLION,
            )
    return rows


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += [
        "| " + " | ".join(cell.replace("|", "\\|").replace("\n", " ") for cell in row) + " |" for row in rows
    ]
    return out


def render(r: dict[str, Any]) -> str:
    m = r["machine"]
    lines = [f"# telemetry-mcp benchmark: {r['name']}", ""]
    dirty = " (uncommitted changes)" if m.get("git_dirty") else ""
    lines += [
        f"{r['created']} · `{r['command']}` · commit {m.get('git_commit')}{dirty}",
        "",
        f"Machine: {m['cpu_model']}, {m['logical_cores']} logical cores, {m['memory_gib']} GiB; "
        f"{m['os']}; Python {m['python']}, DuckDB {m['duckdb']}, mcp {m['mcp']}, pydantic {m['pydantic']}, "
        f"telemetry-mcp {m['telemetry_mcp']}. Load average at start {m.get('load_average_at_start')}, "
        f"at end {m.get('load_average_at_end')} (above the core count means other work shared the CPU). "
        f"Harness peak RSS {mib(r.get('harness_peak_rss_bytes'))}; "
        + ", ".join(f"{k} {v:.0f} s" for k, v in r.get("phase_seconds", {}).items())
        + ".",
        "",
    ]
    if r.get("errors"):
        lines += ["## Phases that failed", ""]
        lines += [f"- **{e['phase']}**: {e['error']}" for e in r["errors"]]
        lines.append("")

    targets = r.get("targets", [])
    if targets:
        lines += ["## Targets", ""]
        lines += _table(
            ["figure", "measured", "target", ""],
            [[t["what"], t["measured"], t["target"], verdict(t["met"])] for t in targets],
        )
        missed = sum(1 for t in targets if t["met"] is False)
        lines += ["", f"{len(targets) - missed} of {len(targets)} judged figures met their target.", ""]

    ds = r.get("datasets", {})
    if ds:
        lines += ["## Data sets", ""]
        rows = []
        for label, d in ds.items():
            gen = f"generated now in {d['generate_seconds']:.0f} s" if d.get("generated_now") else "cached"
            rows.append(
                [
                    label,
                    _num(d.get("events")),
                    _num(d.get("users_pool")),
                    str(d.get("seed")),
                    f"{d.get('since')} → {d.get('until')}",
                    mib(d.get("bytes")),
                    gen,
                ]
            )
        lines += [*_table(["data set", "events", "user pool", "seed", "range", "JSONL", ""], rows), ""]

    lines += _ingest_sections(r)
    lines += _query_sections(r)

    storage = r.get("storage", {})
    if storage:
        lines += ["## Storage (database file after CHECKPOINT)", ""]
        rows = [
            [
                label,
                _num(s["events"]),
                _num(s["bytes"]),
                _num(s["mb_per_million"], 1),
                f"≤ {DB_MB_PER_MILLION:.0f}",
                verdict(s["mb_per_million"] <= DB_MB_PER_MILLION),
            ]
            for label, s in storage.items()
        ]
        lines += [*_table(["data set", "events", "bytes", "MB per million events", "target", ""], rows), ""]

    cold = r.get("cold_start", {})
    if cold.get("runs"):
        lines += ["## Cold start (process start → initialize + tools/list answered)", ""]
        rows = [
            [
                c["server"],
                c["store"],
                _ms(c["median_ms"]),
                _ms(c["p95_ms"]),
                ", ".join(f"{x:.0f}" for x in c["runs_ms"]),
            ]
            for c in cold["runs"]
        ]
        lines += _table(["server", "store", "median", "p95", "runs (ms)"], rows)
        if cold.get("ratio") is not None:
            lines += [
                "",
                f"Ours / trivial (empty store, medians): **{cold['ratio']:.2f}×** "
                f"(target ≤ {COLD_START_MAX_RATIO}×: {verdict(cold['ratio'] <= COLD_START_MAX_RATIO)}).",
            ]
        lines.append("")

    notes = r.get("notes", [])
    if notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    return "\n".join(lines).rstrip() + "\n"


def _ingest_sections(r: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    inproc = r.get("ingest_inprocess", [])
    if inproc:
        lines += ["## Ingest", "", "### In process: `Ingestor.ingest(list_of_dicts)` on a file store", ""]
        rows = []
        for i in inproc:
            goal = INGEST_INPROC_TARGETS.get(i["batch"])
            eps = i.get("events_per_s")
            rows.append(
                [
                    _num(i["batch"]),
                    _num(i["events"]),
                    _num(i["seconds"], 2),
                    _num(eps),
                    f"≥ {goal:,.0f}" if goal else "—",
                    verdict(eps >= goal) if goal and eps else "",
                    mib(i.get("peak_rss_bytes")),
                    "; ".join(
                        x
                        for x in (f"{i['rejected']} rejected" if i.get("rejected") else "", i.get("note", ""))
                        if x
                    ),
                ]
            )
        lines += _table(
            ["batch", "events", "seconds", "events/s", "target", "", "process peak RSS", ""], rows
        )
        lines += ["", "Only the ingest calls are timed (JSON parsing of the source lines is not).", ""]
    stdio = r.get("ingest_stdio", [])
    if stdio:
        lines += ["### Over stdio MCP: `ingest_events`, raw JSON-RPC, one call in flight", ""]
        rows = []
        for i in stdio:
            goal = INGEST_STDIO_TARGETS.get(i["batch"])
            eps = i.get("events_per_s")
            rows.append(
                [
                    _num(i["batch"]),
                    _num(i["events"]),
                    _num(i["calls"]),
                    _num(i["seconds"], 2),
                    _num(eps),
                    f"≥ {goal:,.0f}" if goal else "—",
                    verdict(eps >= goal) if goal and eps else "",
                    _ms(i.get("call_median_ms")),
                    mib(i.get("server_peak_rss_bytes")),
                    i.get("note", ""),
                ]
            )
        header = [
            "batch",
            "events",
            "calls",
            "seconds",
            "events/s",
            "target",
            "",
            "median call",
            "server peak RSS",
        ]
        lines += _table([*header, ""], rows)
        lines += ["", "Wall time from the first request written to the last answer read.", ""]
    imports = r.get("imports", [])
    if imports:
        lines += ["### `telemetry-mcp import FILE.jsonl --db PATH` (subprocess, wall time)", ""]
        rows = [
            [
                i["dataset"],
                _num(i["events"]),
                _num(i["seconds"], 1),
                _num(i["events_per_s"]),
                mib(i.get("peak_rss_bytes")),
                i.get("why", ""),
            ]
            for i in imports
        ]
        lines += [*_table(["data set", "events", "seconds", "events/s", "peak RSS", ""], rows), ""]
    return lines


def _query_sections(r: dict[str, Any]) -> list[str]:
    queries = r.get("queries", {})
    if not queries:
        return []
    runs = r.get("options", {}).get("runs", 5)
    warmup = r.get("options", {}).get("warmup", 1)
    lines = [
        "## Queries: through stdio MCP vs plain DuckDB SQL on the same file",
        "",
        f"Median and p95 of {runs} warm runs after {warmup} warm-up. MCP: request written → answer read, "
        "raw JSON-RPC. Plain: the same question as SQL (bench/plain_sql.py) in a fresh read-only "
        "DuckDB process, same thread count, no server between. Ratio = MCP median / plain median. The "
        "plain SQL computes each answer from the event columns alone (sessions derived at query time); a "
        "ratio below 1 means the product's stored session keys or its query plan beat that formulation. "
        "Notes say where a tool's answer differs from the plain result (they are compared case by case).",
        "",
    ]
    for label, q in queries.items():
        lines += [f"### {label}: {q['events']:,} events, {q['since']} → {q['until']}", ""]
        rows = []
        for c in q["cases"]:
            ours, plain = c.get("ours"), c.get("plain")
            target = c.get("target_ms")
            ok = verdict(ours["median_ms"] <= target) if ours and target is not None else ""
            rows.append(
                [
                    c["name"],
                    f"`{c['tool']}`",
                    c["status"],
                    _ms(ours["median_ms"]) if ours else "—",
                    _ms(ours["p95_ms"]) if ours else "—",
                    _ms(plain["median_ms"]) if plain else "—",
                    _ms(plain["p95_ms"]) if plain else "—",
                    f"{c['ratio']:.2f}×" if c.get("ratio") is not None else "—",
                    f"≤ {_ms(target)}" if target is not None else "—",
                    ok,
                    _num(c.get("answer_bytes")) if c.get("answer_bytes") else "—",
                    mib(c.get("server_hwm_after_bytes")),
                    "; ".join(c.get("notes", [])),
                ]
            )
        header = [
            "case",
            "tool",
            "status",
            "MCP median",
            "MCP p95",
            "plain median",
            "plain p95",
            "ours/plain",
        ]
        lines += _table([*header, "target", "", "answer bytes", "server RSS HWM", "notes"], rows)
        lines += [
            "",
            f"Server peak RSS over the query phase: {mib(q.get('server_peak_rss_bytes'))}; "
            f"plain-SQL process peak: {mib(q.get('plain_peak_rss_bytes'))}. "
            "Server RSS HWM = the server's resident high-water mark (VmHWM) after the case's runs, so a "
            "jump marks the case that raised the peak. Tools listed by the server: "
            f"{', '.join(q.get('tools', []))}.",
            "",
        ]
    return lines
