"""Data sets from the fixture generator, cached under bench/data/ keyed by size, seed and days.

Generation runs `fixtures/generate.py` in a subprocess that streams JSONL to disk, so neither the
harness nor the generator ever holds a whole data set. Stores are built by `telemetry-mcp import`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

from common import DATA, GENERATOR, REPO, PeakRss, log, server_env, size_label


def generator_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("telemetry_fixture_generate", GENERATOR)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load the fixture generator at {GENERATOR}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def product_commit() -> str:
    """git HEAD (short) of the repo, '+dirty' when src/ has uncommitted changes."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "src"], cwd=REPO, capture_output=True, text=True)
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def generator_digest() -> str:
    return hashlib.sha256(GENERATOR.read_bytes()).hexdigest()[:16]


@dataclass(frozen=True)
class Dataset:
    """One generated data set: `events` events over `days` days ending at the generator's default end."""

    events: int
    seed: int
    days: int

    @property
    def label(self) -> str:
        return size_label(self.events)

    @property
    def key(self) -> str:
        return f"{self.label}-seed{self.seed}-{self.days}d"

    @property
    def jsonl(self) -> Path:
        return DATA / f"events-{self.key}.jsonl"

    @property
    def store(self) -> Path:
        return DATA / f"store-{self.key}.duckdb"

    def window(self) -> tuple[str, str]:
        """since/until (ISO, UTC) covering exactly the data set's days."""
        end: datetime = generator_module().DEFAULT_END
        start = end - timedelta(days=self.days)
        return _iso(start), _iso(end)

    def users(self) -> int:
        return int(generator_module().default_users(self.events))


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _meta_path(path: Path) -> Path:
    return path.with_name(path.name + ".meta.json")


def read_meta(path: Path) -> dict[str, Any] | None:
    meta = _meta_path(path)
    if not (path.exists() and meta.exists()):
        return None
    try:
        data = json.loads(meta.read_text())
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def write_meta(path: Path, data: dict[str, Any]) -> None:
    _meta_path(path).write_text(json.dumps(data, indent=2, default=str) + "\n")


def ensure_jsonl(ds: Dataset, rebuild: bool, notes: list[str]) -> dict[str, Any]:
    """The data set's JSONL, generated now unless a complete cached copy exists."""
    meta = None if rebuild else read_meta(ds.jsonl)
    digest = generator_digest()
    if meta is not None and meta.get("events") == ds.events:
        if meta.get("generator_sha256") != digest:
            notes.append(
                f"data set {ds.key}: cached JSONL was made by a different fixtures/generate.py "
                "(rerun with --rebuild to regenerate)"
            )
        return {**meta, "generated_now": False}
    DATA.mkdir(parents=True, exist_ok=True)
    tmp = ds.jsonl.with_name(ds.jsonl.name + ".partial")
    log(f"generating {ds.events:,} events (seed {ds.seed}, {ds.days} days) → {ds.jsonl.name}")
    started = time.perf_counter()
    cmd = [sys.executable, str(GENERATOR), "--events", str(ds.events), "--seed", str(ds.seed)]
    cmd += ["--days", str(ds.days), "--out", str(tmp)]
    subprocess.run(cmd, check=True, cwd=REPO)
    os.replace(tmp, ds.jsonl)
    meta = {
        "events": ds.events,
        "seed": ds.seed,
        "days": ds.days,
        "users_pool": ds.users(),
        "bytes": ds.jsonl.stat().st_size,
        "generator_sha256": digest,
        "generate_seconds": round(time.perf_counter() - started, 2),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    write_meta(ds.jsonl, meta)
    # A store built from an older JSONL is stale now.
    remove_store(ds.store)
    return {**meta, "generated_now": True}


def remove_store(path: Path) -> None:
    for p in (path, path.with_name(path.name + ".wal"), _meta_path(path)):
        if p.exists():
            p.unlink()


def db_bytes(path: Path) -> dict[str, int]:
    wal = path.with_name(path.name + ".wal")
    return {
        "file": path.stat().st_size if path.exists() else 0,
        "wal": wal.stat().st_size if wal.exists() else 0,
    }


def run_import(jsonl: Path, db: Path, stderr_path: Path) -> dict[str, Any]:
    """`telemetry-mcp import FILE --db PATH` as a subprocess: wall time and peak RSS."""
    remove_store(db)
    cmd = [sys.executable, "-m", "telemetry_mcp", "import", str(jsonl), "--db", str(db), "--quiet"]
    log(f"importing {jsonl.name} → {db.name}")
    with stderr_path.open("wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=server_env(), cwd=REPO)
        rss = PeakRss(proc.pid).start()
        while proc.poll() is None:
            rss.hwm()
            time.sleep(0.05)
        seconds = time.perf_counter() - started
        peak = rss.stop()
    tail = stderr_path.read_text(errors="replace")[-2000:]
    if proc.returncode != 0:
        raise RuntimeError(f"import exited {proc.returncode}: {tail}")
    summary = next((ln for ln in reversed(tail.splitlines()) if ln.startswith("imported ")), tail[-300:])
    return {"seconds": round(seconds, 3), "peak_rss_bytes": peak, "summary": summary.strip()}


def ensure_store(
    ds: Dataset, rebuild: bool, stderr_path: Path
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The loaded store for a data set: (store meta, import measurement when it was built now)."""
    meta = None if rebuild else read_meta(ds.store)
    jsonl_meta = read_meta(ds.jsonl) or {}
    if meta is not None and meta.get("jsonl_created") == jsonl_meta.get("created"):
        return {**meta, "built_now": False}, None
    measured = run_import(ds.jsonl, ds.store, stderr_path)
    meta = {
        "events": ds.events,
        "product_commit": product_commit(),
        "jsonl_created": jsonl_meta.get("created"),
        "bytes_after_import": db_bytes(ds.store),
        "import": measured,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    write_meta(ds.store, meta)
    return {**meta, "built_now": True}, measured
