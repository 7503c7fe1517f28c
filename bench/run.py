#!/usr/bin/env python3
"""telemetry-mcp benchmark: speed, memory and scale, side by side with plain DuckDB.

    python bench/run.py                      # 1 M and 10 M events (long)
    python bench/run.py --sizes 1m           # one size
    python bench/run.py --quick              # 100 k events, about a minute (what .ci/run executes)
    python bench/run.py --phases queries --cases journeys,funnel_ordered_4 --sizes 1m

Data sets come from fixtures/generate.py (seeded; streamed to JSONL) and are cached under
bench/data/ with their loaded stores, keyed by size, seed and days (--rebuild to redo them).
Writes <out>/<name>.json and <name>.md and prints the Markdown. Timings never decide the exit
code: it is 0 whenever every phase ran, 1 when a phase could not run (see the report's errors).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cases as case_table
import collector as collector_bench
import interleaved as interleaved_bench
from checks import compare
from common import (
    BENCH,
    DATA,
    REPO,
    RESULTS,
    PeakRss,
    dump_json,
    log,
    machine_facts,
    parse_size,
    server_env,
    size_label,
    timing_summary,
)
from datasets import Dataset, db_bytes, ensure_jsonl, ensure_store, product_commit, read_meta, run_import
from report import evaluate_targets, render
from stdio_client import StdioPeer

SERVER = [sys.executable, "-m", "telemetry_mcp"]
TRIVIAL = [sys.executable, str(BENCH / "trivial_server.py")]

# Events per batch size: (full run, --quick); each batch size stops early at its time budget.
INPROC_EVENTS = {1: (2_000, 200), 100: (100_000, 5_000), 1_000: (300_000, 10_000), 10_000: (300_000, 20_000)}
STDIO_EVENTS = {100: (50_000, 2_000), 1_000: (200_000, 10_000)}
BUDGET_SECONDS = (60.0, 10.0)
REBUILD_STALE_MAX = 1_000_000
PHASES = ("ingest", "stdio", "import", "queries", "cold", "collector", "interleaved")


@dataclass
class Options:
    sizes: list[int]
    import_size: int
    seed: int
    days: int
    runs: int
    warmup: int
    cold_runs: int
    phases: set[str]
    cases: list[case_table.Case]
    quick: bool
    rebuild: bool
    out: Path
    name: str
    keep_tmp: bool
    command: str


class Bench:
    def __init__(self, opts: Options) -> None:
        self.o = opts
        DATA.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix="tmp-", dir=DATA))
        self.rebuilt: set[Path] = set()
        self.r: dict[str, Any] = {
            "name": opts.name,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": opts.command,
            "options": {
                "sizes": [size_label(s) for s in opts.sizes],
                "import_size": size_label(opts.import_size),
                "seed": opts.seed,
                "days": opts.days,
                "runs": opts.runs,
                "warmup": opts.warmup,
                "cold_runs": opts.cold_runs,
                "phases": sorted(opts.phases),
                "quick": opts.quick,
            },
            "machine": machine_facts(),
            "datasets": {},
            "ingest_inprocess": [],
            "ingest_stdio": [],
            "imports": [],
            "queries": {},
            "storage": {},
            "cold_start": {},
            "collector": {},
            "interleaved": {},
            "notes": [],
            "errors": [],
        }
        if os.environ.get("PYTHONDONTWRITEBYTECODE"):
            self.note(
                "PYTHONDONTWRITEBYTECODE is set: modules without a .pyc already on disk (such as new files "
                "in src/) are compiled from source at every process start, which weighs on cold start."
            )

    def note(self, text: str) -> None:
        if text not in self.r["notes"]:
            self.r["notes"].append(text)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        log(f"phase {name}")
        started = time.perf_counter()
        try:
            yield
        except Exception as exc:  # record, keep going: the other phases still report
            log(f"phase {name} FAILED: {exc}")
            self.r["errors"].append(
                {
                    "phase": name,
                    "error": f"{type(exc).__name__}: {str(exc)[:800]}",
                    "trace": traceback.format_exc(),
                }
            )
        finally:
            self.r.setdefault("phase_seconds", {})[name] = round(time.perf_counter() - started, 1)

    def rebuild_store(self, ds: Dataset) -> bool:
        """Rebuild a cached store at most once per run: on --rebuild, or when another product version
        imported it and it is cheap to redo (up to REBUILD_STALE_MAX events; bigger ones get a note)."""
        if ds.store in self.rebuilt:
            return False
        meta = read_meta(ds.store)
        stale = meta is not None and meta.get("product_commit") != product_commit()
        if self.o.rebuild or (stale and ds.events <= REBUILD_STALE_MAX):
            self.rebuilt.add(ds.store)
            return True
        return False

    def dataset(self, events: int) -> Dataset:
        return Dataset(events, self.o.seed, self.o.days)

    def count(self, table: dict[int, tuple[int, int]], batch: int, available: int) -> int:
        full, quick = table[batch]
        return min(quick if self.o.quick else full, available)

    @property
    def budget(self) -> float:
        return BUDGET_SECONDS[1] if self.o.quick else BUDGET_SECONDS[0]

    # ------------------------------------------------------------------ phases

    def datasets(self) -> None:
        needed = sorted(
            set(self.o.sizes)
            | ({self.o.import_size} if self.o.phases & {"ingest", "stdio", "import"} else set())
        )
        for events in needed:
            ds = self.dataset(events)
            meta = ensure_jsonl(ds, self.o.rebuild, self.r["notes"])
            since, until = ds.window()
            self.r["datasets"][ds.label] = {**meta, "since": since, "until": until, "file": ds.jsonl.name}

    def ingest_inprocess(self) -> None:
        ds = self.dataset(self.o.import_size)
        for batch in INPROC_EVENTS:
            n = self.count(INPROC_EVENTS, batch, ds.events)
            db = self.tmp / f"inproc-{batch}.duckdb"
            log(f"in-process ingest: {n:,} events in batches of {batch:,}")
            cmd = [sys.executable, str(BENCH / "inproc_ingest.py"), "--jsonl", str(ds.jsonl), "--db", str(db)]
            cmd += ["--batch", str(batch), "--events", str(n), "--max-seconds", str(self.budget)]
            out = subprocess.run(cmd, capture_output=True, text=True, env=server_env(), cwd=REPO, check=False)
            if out.returncode != 0:
                raise RuntimeError(f"inproc_ingest.py exited {out.returncode}: {out.stderr[-1500:]}")
            result = json.loads(out.stdout)
            result["source"] = ds.label
            if result.get("budget_reached"):
                result["note"] = f"stopped at the {self.budget:.0f} s budget"
            self.r["ingest_inprocess"].append(result)
            if result["rejected"]:
                rejected = f"rejected {result['rejected']} events: {result['errors']}"
                self.note(f"in-process ingest (batch {batch}) {rejected}")
            _remove_db(db)

    def ingest_stdio(self) -> None:
        ds = self.dataset(self.o.import_size)
        for batch in STDIO_EVENTS:
            n = self.count(STDIO_EVENTS, batch, ds.events)
            db = self.tmp / f"stdio-{batch}.duckdb"
            log(f"stdio MCP ingest: {n:,} events in batches of {batch:,}")
            with StdioPeer(
                [*SERVER, "--db", str(db)], server_env(), self.tmp / f"stdio-{batch}.stderr"
            ) as peer:
                rss = PeakRss(peer.pid).start()
                peer.initialize()
                if "ingest_events" not in {t["name"] for t in peer.list_tools()}:
                    raise RuntimeError("the server lists no ingest_events tool")
                requests = _ingest_requests(peer, ds.jsonl, batch, n)
                call_seconds: list[float] = []
                accepted = rejected = 0
                first_error = ""
                sent = 0
                started = time.perf_counter()
                for rid, count, line in requests:
                    if time.perf_counter() - started > self.budget:
                        break
                    answer = peer.exchange(line, rid)
                    sent += count
                    call_seconds.append(answer.seconds)
                    sc = answer.structured or {}
                    if answer.is_error:
                        rejected += count
                        first_error = first_error or answer.error_text[:300]
                    else:
                        accepted += int(sc.get("accepted", 0))
                        rejected += int(sc.get("rejected", 0))
                wall = time.perf_counter() - started
                peak = rss.stop()
            events = sent
            budget_reached = sent < sum(c for _, c, _ in requests)
            del requests
            item: dict[str, Any] = {
                "batch": batch,
                "events": events,
                "calls": len(call_seconds),
                "seconds": round(wall, 3),
                "events_per_s": round(events / wall, 1) if wall else None,
                "call_median_ms": timing_summary(call_seconds)["median_ms"] if call_seconds else None,
                "accepted": accepted,
                "rejected": rejected,
                "server_peak_rss_bytes": peak,
            }
            notes = [f"stopped at the {self.budget:.0f} s budget"] if budget_reached else []
            if accepted != events:
                notes.append(
                    f"accepted {accepted:,} of {events:,}" + (f": {first_error}" if first_error else "")
                )
            item["note"] = "; ".join(notes)
            self.r["ingest_stdio"].append(item)
            _remove_db(db)

    def record_import(self, ds: Dataset, measured: dict[str, Any], why: str) -> None:
        self.r["imports"].append(
            {
                "dataset": ds.label,
                "events": ds.events,
                "seconds": measured["seconds"],
                "events_per_s": round(ds.events / measured["seconds"], 1),
                "peak_rss_bytes": measured["peak_rss_bytes"],
                "summary": measured["summary"],
                "why": why,
            }
        )

    def import_phase(self) -> None:
        ds = self.dataset(self.o.import_size)
        stderr = self.tmp / f"import-{ds.label}.stderr"
        if ds.events in self.o.sizes and "queries" in self.o.phases:
            meta, measured = ensure_store(ds, self.rebuild_store(ds), stderr)
            if measured is not None:
                self.record_import(ds, measured, "built the cached query store")
                return
            if self.o.quick and meta.get("import"):
                # Quick runs keep CI short: the figure from when the cached store was built.
                self.record_import(
                    ds, meta["import"], f"when the cached store was built ({meta.get('created')})"
                )
                return
        db = self.tmp / f"import-{ds.label}.duckdb"
        self.record_import(ds, run_import(ds.jsonl, db, stderr), "fresh scratch store")
        _remove_db(db)

    def queries(self, events: int) -> None:
        ds = self.dataset(events)
        meta, measured = ensure_store(ds, self.rebuild_store(ds), self.tmp / f"import-{ds.label}.stderr")
        if measured is not None:
            self.record_import(ds, measured, "built the cached query store")
        elif meta.get("product_commit") != product_commit():
            self.note(
                f"the cached {ds.label} store was imported by product {meta.get('product_commit')} (now "
                f"{product_commit()}): its import figure and storage are that version's; --rebuild redoes it"
            )
        size = db_bytes(ds.store)
        total = size["file"] + size["wal"]
        self.r["storage"][ds.label] = {
            "events": events,
            "bytes": total,
            "wal_bytes": size["wal"],
            "mb_per_million": round(total / 1e6 / (events / 1e6), 2),
        }
        since, until = ds.window()
        q: dict[str, Any] = {"events": events, "since": since, "until": until, "cases": []}
        self.r["queries"][ds.label] = q
        plain_args: dict[str, dict[str, Any]] = {}
        with StdioPeer(
            [*SERVER, "--db", str(ds.store)], server_env(), self.tmp / f"queries-{ds.label}.stderr"
        ) as peer:
            rss = PeakRss(peer.pid).start()
            peer.initialize(timeout=1800)  # a cached store may migrate on open
            tools = {t["name"]: t for t in peer.list_tools()}
            q["tools"] = sorted(tools)
            for case in self.o.cases:
                result = self.run_case(peer, rss, case, tools, since, until, events)
                q["cases"].append(result)
                plain_args[case.plain_name] = result["args"]
            q["server_peak_rss_bytes"] = rss.stop()
        self.plain(ds, q, plain_args)

    def run_case(
        self,
        peer: StdioPeer,
        rss: PeakRss,
        case: case_table.Case,
        tools: dict[str, dict[str, Any]],
        since: str,
        until: str,
        events: int,
    ) -> dict[str, Any]:
        args = case.arguments(since, until)
        result: dict[str, Any] = {
            "name": case.name,
            "tool": case.tool,
            "plain_name": case.plain_name,
            "target_ms": case.target(events),
            "notes": [],
        }
        tool = tools.get(case.tool)
        if tool is None:
            result.update(status="skipped", args=args)
            result["notes"].append(f"tool {case.tool} is not registered yet")
            return result
        declared = set((tool.get("inputSchema") or {}).get("properties", {}))
        dropped = sorted(k for k in args if declared and k not in declared)
        if dropped:
            args = {k: v for k, v in args.items() if k not in dropped}
            result["notes"].append(f"the tool declares no {', '.join(dropped)}: left out")
        result["args"] = args
        log(f"  {case.name} via MCP")
        seconds: list[float] = []
        for i in range(self.o.warmup + self.o.runs):
            answer = peer.call(case.tool, args)
            if answer.is_error:
                result.update(status="error")
                result["notes"].append(f"tool error: {answer.error_text[:300]}")
                return result
            if i >= self.o.warmup:
                seconds.append(answer.seconds)
        sc = answer.structured or {}
        result.update(
            status="ok",
            ours=timing_summary(seconds),
            answer_bytes=answer.nbytes,
            summary=str(sc.get("summary", ""))[:600],
            answer=sc,
            server_hwm_after_bytes=rss.hwm(),
        )
        if sc.get("truncated"):
            result["notes"].append("answer truncated at its limit")
        return result

    def plain(self, ds: Dataset, q: dict[str, Any], plain_args: dict[str, dict[str, Any]]) -> None:
        log(f"  plain DuckDB SQL on {ds.store.name}")
        args_file = self.tmp / f"plain-args-{ds.label}.json"
        args_file.write_text(json.dumps(plain_args))
        cmd = [sys.executable, str(BENCH / "plain_sql.py"), "--db", str(ds.store), "--args", str(args_file)]
        cmd += [
            "--runs",
            str(self.o.runs),
            "--warmup",
            str(self.o.warmup),
            "--threads",
            str(os.cpu_count() or 2),
        ]
        out = subprocess.run(cmd, capture_output=True, text=True, env=server_env(), cwd=REPO, check=False)
        if out.returncode != 0:
            raise RuntimeError(f"plain_sql.py exited {out.returncode}: {out.stderr[-1500:]}")
        data = json.loads(out.stdout)
        q["plain_peak_rss_bytes"] = data["peak_rss_bytes"]
        for c in q["cases"]:
            p = data["cases"].get(c["plain_name"])
            if p is None:
                continue
            if "error" in p:
                c["notes"].append(f"plain SQL failed: {p['error'][:200]}")
                continue
            c["plain"] = timing_summary(p["seconds"])
            c["plain_result"] = p["result"]
            if c.get("ours"):
                c["ratio"] = round(c["ours"]["median_ms"] / c["plain"]["median_ms"], 2)
            for text in compare(c["name"], c.get("answer"), p["result"]):
                c["notes"].append(text)
                self.note(f"{ds.label} {c['name']}: {text}")

    def cold_start(self) -> None:
        empty = self.tmp / "cold-empty.duckdb"
        variants = [
            ("trivial MCPServer (bench/trivial_server.py)", "—", TRIVIAL),
            ("telemetry-mcp", "empty store", [*SERVER, "--db", str(empty)]),
        ]
        loaded = [s for s in self.o.sizes if self.dataset(s).store.exists()]
        if loaded and "queries" in self.o.phases and not self.o.quick:
            big = self.dataset(max(loaded))
            variants.append(("telemetry-mcp", f"{big.label} store", [*SERVER, "--db", str(big.store)]))
        # One untimed start of each first (creates the empty store, warms the page cache).
        for _, _, argv in variants:
            _start_to_tools(argv, self.tmp / "cold.stderr")
        runs: dict[int, list[float]] = {i: [] for i in range(len(variants))}
        for _ in range(self.o.cold_runs):  # interleaved, so drifting load hits every variant alike
            for i, (_, _, argv) in enumerate(variants):
                runs[i].append(_start_to_tools(argv, self.tmp / "cold.stderr"))
        rows = []
        for i, (server, store, argv) in enumerate(variants):
            rows.append({"server": server, "store": store, "argv": argv[1:], **timing_summary(runs[i])})
        self.r["cold_start"] = {"runs": rows, "ratio": round(rows[1]["median_ms"] / rows[0]["median_ms"], 2)}

    def collector(self) -> None:
        """The service under load: collector throughput and bridge latency (bench/collector.py)."""
        c = collector_bench.measure(self.o.quick, self.tmp)
        self.r["collector"] = c
        for run in c["runs"]:
            if not run["no_loss"]:
                self.note(
                    f"collector {run['label']}: {run['stored_events']:,} events stored of "
                    f"{run['acknowledged_events']:,} acknowledged"
                )

    def interleaved(self, events: int) -> None:
        """A batch a second into the loaded store while an agent queries (bench/interleaved.py)."""
        ds = self.dataset(events)
        _, measured = ensure_store(ds, self.rebuild_store(ds), self.tmp / f"import-{ds.label}.stderr")
        if measured is not None:
            self.record_import(ds, measured, "built the cached query store")
        seconds, batches = (10.0, 10) if self.o.quick else (60.0, 60)
        result = interleaved_bench.run(
            ds.store, self.tmp, seconds=seconds, batch=1_000, batches=batches, seed=ds.seed, users=ds.users()
        )
        self.r["interleaved"][ds.label] = result
        for error in result["stdio"]["errors"]:
            self.note(f"interleaved {ds.label}: {error}")

    # ------------------------------------------------------------------ all

    def run(self) -> int:
        try:
            with self.phase("datasets"):
                self.datasets()
            if "ingest" in self.o.phases:
                with self.phase("ingest in process"):
                    self.ingest_inprocess()
            if "stdio" in self.o.phases:
                with self.phase("ingest over stdio"):
                    self.ingest_stdio()
            if "import" in self.o.phases:
                with self.phase("import"):
                    self.import_phase()
            if "queries" in self.o.phases:
                for events in self.o.sizes:
                    with self.phase(f"queries {size_label(events)}"):
                        self.queries(events)
            if "cold" in self.o.phases:
                with self.phase("cold start"):
                    self.cold_start()
            if "collector" in self.o.phases:
                with self.phase("collector"):
                    self.collector()
            if "interleaved" in self.o.phases:
                for events in self.o.sizes:
                    with self.phase(f"interleaved {size_label(events)}"):
                        self.interleaved(events)
        finally:
            if not self.o.keep_tmp:
                shutil.rmtree(self.tmp, ignore_errors=True)
        self.r["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
        self.r["harness_peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        self.r["targets"] = evaluate_targets(self.r)
        markdown = render(self.r)
        if self.r["collector"]:
            markdown += "\n" + collector_bench.render_section(self.r["collector"])
        if self.r["interleaved"]:
            markdown += "\n" + interleaved_bench.render_section(self.r["interleaved"])
        out = self.o.out
        out.mkdir(parents=True, exist_ok=True)
        dump_json(out / f"{self.o.name}.json", self.r)
        (out / f"{self.o.name}.md").write_text(markdown, encoding="utf-8")
        print(markdown)
        log(f"wrote {out / (self.o.name + '.json')} and .md")
        return 1 if self.r["errors"] else 0


def _ingest_requests(peer: StdioPeer, jsonl: Path, batch: int, n: int) -> list[tuple[int, int, bytes]]:
    """(id, events, line) of ingest_events calls carrying the file's first n JSONL lines verbatim.

    Built before the clock starts, so during the measurement the client only writes and reads.
    """
    requests = []
    done = 0
    with jsonl.open("rb") as fh:
        while done < n:
            lines = [ln for ln in (fh.readline().rstrip(b"\n") for _ in range(min(batch, n - done))) if ln]
            if not lines:
                break
            rid = peer.new_id()
            body = b'{"events":[' + b",".join(lines) + b"]}"
            requests.append((rid, len(lines), peer.call_line(rid, "ingest_events", body)))
            done += len(lines)
    return requests


def _start_to_tools(argv: list[str], stderr: Path) -> float:
    """Seconds from process start to initialize + tools/list answered."""
    started = time.perf_counter()
    with StdioPeer(argv, server_env(), stderr) as peer:
        peer.initialize()
        peer.list_tools()
        elapsed = time.perf_counter() - started
    return elapsed


def _remove_db(path: Path) -> None:
    for p in (path, path.with_name(path.name + ".wal")):
        if p.exists():
            p.unlink()


def parse_args(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__,
    )
    parser.add_argument(
        "--quick", action="store_true", help="100k events, fewer ingest events (CI smoke run)"
    )
    parser.add_argument(
        "--sizes", help="data-set sizes for the queries, e.g. 1m,10m (default 1m,10m; quick 100k)"
    )
    parser.add_argument("--import-size", help="size of the import/ingest source (default 1m; quick 100k)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--runs", type=int, default=5, help="timed runs per query (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs first (default 1)")
    parser.add_argument("--cold-runs", type=int, help="cold starts per server (default 5; quick 3)")
    parser.add_argument("--phases", default=",".join(PHASES), help=f"comma list of {', '.join(PHASES)}")
    parser.add_argument("--cases", help="only these query cases (comma list; see bench/cases.py)")
    parser.add_argument("--rebuild", action="store_true", help="regenerate data sets and stores")
    parser.add_argument("--out", type=Path, default=RESULTS, help="report directory (default bench/results)")
    parser.add_argument("--name", help="report name (default: quick, or the sizes, e.g. 1m-10m)")
    parser.add_argument("--keep-tmp", action="store_true", help="keep scratch stores and server stderr")
    ns = parser.parse_args(argv)
    phases = {p.strip() for p in ns.phases.split(",") if p.strip()}
    unknown = phases - set(PHASES)
    if unknown:
        parser.error(f"unknown phase(s) {', '.join(sorted(unknown))}; use {', '.join(PHASES)}")
    sizes = [parse_size(s) for s in (ns.sizes or ("100k" if ns.quick else "1m,10m")).split(",") if s.strip()]
    import_size = parse_size(ns.import_size or ("100k" if ns.quick else "1m"))
    name = ns.name or ("quick" if ns.quick else "-".join(size_label(s) for s in sizes))
    return Options(
        sizes=sizes,
        import_size=import_size,
        seed=ns.seed,
        days=ns.days,
        runs=ns.runs,
        warmup=ns.warmup,
        cold_runs=ns.cold_runs or (3 if ns.quick else 5),
        phases=phases,
        cases=case_table.select(ns.cases),
        quick=ns.quick,
        rebuild=ns.rebuild,
        out=ns.out,
        name=name,
        keep_tmp=ns.keep_tmp,
        command="python bench/run.py "
        + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])),
    )


def main(argv: list[str] | None = None) -> int:
    return Bench(parse_args(argv)).run()


if __name__ == "__main__":
    sys.exit(main())
