"""Shared by the benchmark scripts: paths, sizes, statistics, machine facts and peak-RSS sampling."""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import threading
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
DATA = BENCH / "data"
RESULTS = BENCH / "results"
GENERATOR = REPO / "fixtures" / "generate.py"

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmM]?)\s*$")


def parse_size(text: str) -> int:
    """'100k' → 100_000, '1m' → 1_000_000, '2.5m', '5000'."""
    m = _SIZE.match(text)
    if not m:
        raise ValueError(f"size {text!r} is not understood; use e.g. 100k, 1m, 10m or a plain number")
    factor = {"": 1, "k": 1_000, "m": 1_000_000}[m.group(2).lower()]
    return round(float(m.group(1)) * factor)


def size_label(n: int) -> str:
    """100_000 → '100k', 1_000_000 → '1m', 2_500_000 → '2.5m'."""
    for factor, suffix in ((1_000_000, "m"), (1_000, "k")):
        if n >= factor and (n * 10) % factor == 0:
            value = n / factor
            return f"{value:g}{suffix}"
    return str(n)


def quantile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default, DuckDB's quantile_cont)."""
    if not values:
        raise ValueError("no values")
    s = sorted(values)
    pos = (len(s) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def timing_summary(seconds: list[float]) -> dict[str, Any]:
    """Median / p95 / min / max in milliseconds, plus every run."""
    ms = [s * 1000.0 for s in seconds]
    return {
        "median_ms": round(quantile(ms, 0.5), 2),
        "p95_ms": round(quantile(ms, 0.95), 2),
        "min_ms": round(min(ms), 2),
        "max_ms": round(max(ms), 2),
        "runs_ms": [round(x, 2) for x in ms],
    }


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10, check=False
        )
    except OSError:
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def machine_facts() -> dict[str, Any]:
    """What the figures were measured on."""
    import duckdb

    vm = psutil.virtual_memory()
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "cpu_model": _cpu_model(),
        "logical_cores": psutil.cpu_count(logical=True),
        "physical_cores": psutil.cpu_count(logical=False),
        "memory_bytes": vm.total,
        "memory_gib": round(vm.total / 2**30, 1),
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "duckdb": duckdb.__version__,
        "mcp": _version("mcp"),
        "pydantic": _version("pydantic"),
        "pyarrow": _version("pyarrow"),
        "telemetry_mcp": _version("telemetry-mcp"),
        "git_commit": _git("rev-parse", "--short", "HEAD"),
        "git_dirty": bool(status) if status is not None else None,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def server_env(**extra: str) -> dict[str, str]:
    """The harness environment without TELEMETRY_MCP_* settings, so every server runs on its defaults."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEMETRY_MCP_")}
    env.update(extra)
    return env


def vm_hwm(pid: int) -> int | None:
    """The process's resident-set high-water mark (bytes) from /proc, or None when unavailable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


class PeakRss:
    """Polls a process's RSS from a thread; `peak` is the larger of the samples and /proc VmHWM."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self.pid = pid
        self.interval = interval
        self.sampled = 0
        self._hwm: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"rss-{pid}", daemon=True)

    def _run(self) -> None:
        try:
            proc = psutil.Process(self.pid)
            while not self._stop.is_set():
                self.sampled = max(self.sampled, proc.memory_info().rss)
                self._stop.wait(self.interval)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return

    def start(self) -> PeakRss:
        self._thread.start()
        return self

    def hwm(self) -> int | None:
        """Read VmHWM now (while the process lives) and remember it."""
        value = vm_hwm(self.pid)
        if value is not None:
            self._hwm = max(self._hwm or 0, value)
        return value

    def stop(self) -> int:
        """Stop sampling (call while the process still lives, to catch VmHWM) and return the peak."""
        self.hwm()
        self._stop.set()
        self._thread.join(timeout=2)
        return self.peak

    @property
    def peak(self) -> int:
        return max(self.sampled, self._hwm or 0)


def mib(n: int | float | None) -> str:
    return "—" if n is None else f"{n / 2**20:,.0f} MiB"


def log(message: str) -> None:
    """Progress on stderr with a wall-clock stamp (stdout stays clean for callers)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def dump_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)
