"""Collector requests decoded, mapped and validated in worker processes, beside the serve.

A serve's Python runs under one interpreter lock: HTTP, the wire-format mappers, validation with
the privacy pipeline and the group commit's own Python share one core, which bounds the collector
at ~15,000 events/s however many cores the machine has. Decoding, mapping and validating a request
touch no store, so they run in a small pool of processes; the serve keeps HTTP, the write key's
verdict and the group commit (one writer per store, as before).

- Workers are spawned (never forked: the serve holds DuckDB and threads), on the first collector
  request; until they answer a warm-up, requests are prepared in threads of the serve as before.
- A job is the raw body and what the mapper reads from the request; the answer is the mapped
  summary (counts, origins, per-item errors, the key it carried), the ingest report so far, and
  the rows as Arrow IPC bytes (pickling an Arrow table costs ~8x more), with the distinct values
  for the catalog (the one part of the writer's work that needs no store). The id hashes stay
  with the writer: DuckDB's hash(event_id) is one statement per group there, while a statement
  per request in a worker cost more than all the mapping (~1 ms per 100 events).
- Workers never write to stdout (a stdio owner's stdout carries the protocol: fd 1 is pointed at
  stderr), ignore SIGINT (the serve shuts them down), and exit when the serve is gone, even after
  a kill -9 (each watches its parent's pid).
- A worker that dies (killed, out of memory) breaks the pool: the requests it held are answered
  503 + Retry-After (nothing of them was stored, the SDKs resend) and a new pool is started.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyarrow as pa

from telemetry_mcp.config import Settings
from telemetry_mcp.errors import InvalidArgument
from telemetry_mcp.service.collector.body import decode_body
from telemetry_mcp.service.collector.common import Mapped, WireError
from telemetry_mcp.service.collector.posthog import map_posthog
from telemetry_mcp.service.collector.segment import map_segment
from telemetry_mcp.store.ingest import Prepared, Preparer, catalog_of

log = logging.getLogger(__name__)


class WorkersUnavailable(Exception):
    """A worker died with this request (answer 503 + Retry-After: nothing of it was stored)."""


@dataclass(frozen=True)
class Job:
    """One collector request for a worker: the raw body and what its mapper reads from the request."""

    wire: str  # "posthog" or "segment"
    kind: str  # PostHog: the path without its trailing slash; Segment: the call (batch, track, …)
    raw: bytes
    content_type: str | None
    content_encoding: str | None
    query: dict[str, str]
    now: datetime
    fallback_key: str | None  # a key outside the body (query parameter, Basic auth)
    max_bytes: int


@dataclass
class Outcome:
    """What a worker made of a job. `declined`: not this format's body (the serve handles it)."""

    mapped: Mapped | None = None  # without its events: only counts, origins, errors and the key
    prepared: Prepared | None = None  # None when the key is wrong: nothing was validated
    error: tuple[int, str] | None = None  # the whole request refused: (HTTP status, message)
    declined: bool = False


def map_request(job: Job, payload: Any) -> Mapped | None:
    """The mapper of a job's wire format (None: a PostHog-looking /batch that is Amplitude's)."""
    if job.wire == "posthog":
        amplitude = isinstance(payload, dict) and "events" in payload and "batch" not in payload
        if job.kind == "/batch" and amplitude:
            return None
        return map_posthog(payload, now=job.now)
    return map_segment(payload, job.kind, now=job.now)


def decode_job(job: Job) -> Any:
    return decode_body(
        job.raw,
        content_type=job.content_type,
        content_encoding=job.content_encoding,
        query=job.query,
        max_decoded_bytes=job.max_bytes,
    )


def key_matches(key: str | None, write_key: str) -> bool:
    import hmac

    return key is not None and hmac.compare_digest(key.encode(), write_key.encode())


# --- inside a worker process ---------------------------------------------------------------------

_preparer: Preparer | None = None
_write_key = ""


def _init_worker(settings: Settings, salt: bytes, write_key: str, parent: int, started: Any) -> None:
    global _preparer, _write_key
    with contextlib.suppress(OSError):
        os.dup2(2, 1)  # nothing but the protocol on a stdio owner's stdout
    sys.stdout = sys.stderr
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with(parent)
    logging.basicConfig(level=settings.log_level, stream=sys.stderr)
    _preparer = Preparer(settings, salt)
    _write_key = write_key
    started.put(os.getpid())  # imported and ready: the serve counts its workers from these


def _die_with(parent: int) -> None:
    """Exit when the serve is gone, even after a kill -9 (no orphaned workers hold memory).

    A watch on the parent's pid, not PR_SET_PDEATHSIG: that signal follows the *thread* that
    spawned the worker, and the pool spawns from short-lived threads.
    """
    if os.getppid() != parent:
        os._exit(0)

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch, name="telemetry-parent-watch", daemon=True).start()


def _warm() -> int:
    return os.getpid()


def do_job(job: Job, preparer: Preparer, write_key: str) -> Outcome:
    """Decode, map and (for the right key) validate one request: in a worker, or in the serve."""
    try:
        mapped = map_request(job, decode_job(job))
    except WireError as exc:
        return Outcome(error=(exc.status, exc.message))
    except InvalidArgument as exc:
        return Outcome(error=(400, str(exc)))
    if mapped is None:
        return Outcome(declined=True)
    if not key_matches(mapped.key or job.fallback_key, write_key):
        return Outcome(mapped=mapped)
    return Outcome(mapped=mapped, prepared=preparer.prepare(mapped.events, now=job.now))


def _work(job: Job) -> tuple[Any, ...]:
    """`do_job` in a worker; its answer as a plain tuple, the rows as Arrow IPC bytes."""
    assert _preparer is not None, "worker not initialised"
    out = do_job(job, _preparer, _write_key)
    if out.error is not None:
        return ("error", *out.error)
    if out.mapped is None:
        return ("declined",)
    m = out.mapped
    summary = (m.received, m.origin, m.errors, m.key)
    prepared = out.prepared
    if prepared is None:
        return ("mapped", summary, None)
    ipc: bytes | None = None
    catalog: dict[str, set[str]] | None = None
    table = prepared.table
    if table is not None:
        catalog = catalog_of(table)  # the writer's share that needs no store, done here
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        ipc = sink.getvalue().to_pybytes()
    return ("mapped", summary, (prepared.report, ipc, prepared.received_at, prepared.received, catalog))


def _outcome(answer: tuple[Any, ...]) -> Outcome:
    if answer[0] == "error":
        return Outcome(error=(answer[1], answer[2]))
    if answer[0] == "declined":
        return Outcome(declined=True)
    received, origin, errors, key = answer[1]
    mapped = Mapped(received=received, origin=origin, errors=errors, key=key)
    if answer[2] is None:
        return Outcome(mapped=mapped)
    report, ipc, received_at, count, catalog = answer[2]
    table = pa.ipc.open_stream(ipc).read_all() if ipc is not None else None
    return Outcome(mapped=mapped, prepared=Prepared(report, table, received_at, count, catalog))


# --- in the serve --------------------------------------------------------------------------------


class Workers:
    """The serve's pool of collector workers (`collector_workers` processes; 0: none)."""

    def __init__(self, settings: Settings, salt: bytes, write_key: str, count: int) -> None:
        self.settings = settings
        self.salt = salt
        self.write_key = write_key
        self.count = count
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._ready = False
        self._starting = False
        self._closed = False
        self._lock = threading.Lock()
        self.restarts = 0
        self.pids: list[int] = []

    @property
    def ready(self) -> bool:
        return self._ready

    def start(self) -> None:
        """Spawn the workers in the background (idempotent); `ready` once each answered a warm-up."""
        with self._lock:
            if self.count <= 0 or self._closed or self._starting or self._ready:
                return
            self._starting = True
        threading.Thread(target=self._spawn, name="telemetry-workers-start", daemon=True).start()

    def _spawn(self) -> None:
        try:
            context = multiprocessing.get_context("spawn")
            started = context.Queue()
            pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=self.count,
                mp_context=context,
                initializer=_init_worker,
                initargs=(self.settings, self.salt, self.write_key, os.getpid(), started),
            )
            # As many warm-ups at once as workers: none is idle yet, so the pool spawns them all;
            # each reports its pid once it has imported everything.
            warm = [pool.submit(_warm) for _ in range(self.count)]
            for future in warm:
                future.result(timeout=120)
            pids = {started.get(timeout=120) for _ in range(self.count)}
        except Exception:
            log.exception("collector workers did not start; requests are prepared in the serve")
            with self._lock:
                self._starting = False
            return
        with self._lock:
            self._starting = False
            if self._closed:
                pool.shutdown(wait=False, cancel_futures=True)
                return
            self._pool = pool
            self.pids = sorted(pids)
            self._ready = True
        log.info("collector workers ready: %s", self.pids)

    async def run(self, job: Job) -> Outcome | None:
        """The job done by a worker; None when no worker is ready (do it in the serve instead).

        Raises WorkersUnavailable when the worker died with it (a new pool is being started).
        """
        pool = self._pool if self._ready else None
        if pool is None:
            self.start()
            return None
        try:
            answer = await asyncio.get_running_loop().run_in_executor(pool, _work, job)
        except (BrokenProcessPool, RuntimeError) as exc:
            # RuntimeError: submitted while the broken pool was being shut down
            self._broken(pool)
            raise WorkersUnavailable(f"a collector worker stopped ({type(exc).__name__})") from None
        return _outcome(answer)

    def _broken(self, pool: concurrent.futures.ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is not pool:
                return  # another request saw it first
            self._pool, self._ready = None, False
            self.restarts += 1
        log.warning("a collector worker died; starting a new pool (restart %d)", self.restarts)
        threading.Thread(target=pool.shutdown, kwargs={"wait": False, "cancel_futures": True}).start()
        self.start()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pool, self._pool, self._ready = self._pool, None, False
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


__all__ = ["Job", "Outcome", "Workers", "WorkersUnavailable", "decode_job", "do_job", "map_request"]
