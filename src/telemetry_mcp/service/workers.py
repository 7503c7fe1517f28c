"""Collector requests decoded, mapped and validated in worker processes, beside the serve.

A serve's Python runs under one interpreter lock: HTTP, the wire-format mappers, validation with
the privacy pipeline and the group commit's own Python share one core, which bounds the collector
at ~15,000 events/s however many cores the machine has. Decoding, mapping and validating a request
touch no store, so they run in a small pool of processes; the serve keeps HTTP, the write key's
verdict and the group commit (one writer per store, as before).

- Workers are spawned (never forked: the serve holds DuckDB and threads), on the first collector
  request; until one has reported ready, requests are prepared in threads of the serve as before.
- Each worker has two pipes of its own (jobs in, answers out), read and written by the serve's
  event loop: length-prefixed pickles, one job per worker at a time, the others queued.
- A job is the raw body and what the mapper reads from the request; the answer is the mapped
  summary (counts, origins, per-item errors, the key it carried), the ingest report so far, and
  the rows as Arrow IPC bytes (pickling an Arrow table costs ~8x more), with the distinct values
  for the catalog (the one part of the writer's work that needs no store). The id hashes stay
  with the writer: DuckDB's hash(event_id) is one statement per group there, while a statement
  per request in a worker cost more than all the mapping (~1 ms per 100 events).
- Workers never write to stdout (a stdio owner's stdout carries the protocol: fd 1 is pointed at
  stderr), ignore SIGINT (the serve shuts them down), and exit when the serve is gone, even after
  a kill -9 (each watches its parent's pid).
- A worker that dies (killed, out of memory) fails the one request it held: 503 + Retry-After
  (nothing of it was stored, the SDK resends); another worker is spawned in its place.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import multiprocessing
import os
import pickle
import signal
import struct
import sys
import threading
import time
from collections import deque
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
_HEADER = struct.Struct("<Q")  # a frame on a worker's pipes: its length, then a pickle


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
    """Is `key` the collector write key (a constant-time comparison)? The serve's verdict too."""
    return key is not None and hmac.compare_digest(key.encode(), write_key.encode())


# --- inside a worker process ---------------------------------------------------------------------

_preparer: Preparer | None = None
_write_key = ""


def _worker_main(
    jobs: Any, answers: Any, settings: Settings, salt: bytes, write_key: str, parent: int
) -> None:
    """A worker process: read a job, answer it, until the serve closes the jobs pipe (or is gone)."""
    global _preparer, _write_key
    with contextlib.suppress(OSError):
        os.dup2(2, 1)  # nothing but the protocol on a stdio owner's stdout
    sys.stdout = sys.stderr
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with(parent)
    logging.basicConfig(level=settings.log_level, stream=sys.stderr)
    _preparer = Preparer(settings, salt)
    _write_key = write_key
    rfd, wfd = jobs.fileno(), answers.fileno()
    _write_frame(wfd, pickle.dumps(("ready", os.getpid())))  # imported: the serve may send jobs
    while True:
        data = _read_frame(rfd)
        if data is None:
            return  # the serve closed the pipe: it is stopping
        try:
            answer = _work(pickle.loads(data))
        except Exception as exc:  # a bug, not a bad request (those are answers): the serve says 500
            log.exception("collector worker: a job failed")
            answer = ("raised", type(exc).__name__, str(exc)[:500])
        _write_frame(wfd, pickle.dumps(answer, protocol=5))


def _write_frame(fd: int, payload: bytes) -> None:
    view = memoryview(_HEADER.pack(len(payload)) + payload)
    while view:
        view = view[os.write(fd, view) :]


def _read_frame(fd: int) -> bytes | None:
    head = _read_exactly(fd, _HEADER.size)
    return None if head is None else _read_exactly(fd, _HEADER.unpack(head)[0])


def _read_exactly(fd: int, n: int) -> bytes | None:
    chunks, left = [], n
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _die_with(parent: int) -> None:
    """Exit when the serve is gone, even after a kill -9 (no orphaned workers hold memory).

    A watch on the parent's pid, not PR_SET_PDEATHSIG: that signal follows the *thread* that
    spawned the worker, and workers are spawned from short-lived threads.
    """
    if os.getppid() != parent:
        os._exit(0)

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch, name="telemetry-parent-watch", daemon=True).start()


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


class _Proc:
    """One worker process as the serve sees it: its pipes, what it is doing, what came back."""

    def __init__(self, proc: Any, jobs: Any, answers: Any, pid: int) -> None:
        self.proc, self.jobs, self.answers, self.pid = proc, jobs, answers, pid
        self.wfd, self.rfd = jobs.fileno(), answers.fileno()
        self.current: asyncio.Future[tuple[Any, ...]] | None = None
        self.inbuf = bytearray()
        self.outbuf = b""
        self.loop: asyncio.AbstractEventLoop | None = None  # the loop its pipes are watched by


class Workers:
    """The serve's collector workers (`collector_workers` processes; 0: none).

    The serve talks to each worker over two pipes of its own, straight from the event loop: a job
    is written when the worker is free, its answer read when the pipe is readable. No executor
    threads sit in between (concurrent.futures' pool, tried first, adds two thread hand-offs per
    request, each waiting for the interpreter lock, and one dead worker broke the whole pool). A
    worker that dies fails only the job it held; a new one is spawned in its place.
    """

    def __init__(self, settings: Settings, salt: bytes, write_key: str, count: int) -> None:
        self.settings = settings
        self.salt = salt
        self.write_key = write_key
        self.count = count
        self.restarts = 0
        self._procs: list[_Proc] = []  # started and ready (touched under _lock)
        self._idle: deque[_Proc] = deque()  # free for a job (event loop only)
        self._waiting: deque[tuple[bytes, asyncio.Future[tuple[Any, ...]]]] = deque()
        self._starting = 0
        self._closed = False
        self._lock = threading.Lock()

    @property
    def ready(self) -> bool:
        with self._lock:
            return bool(self._procs)

    @property
    def pids(self) -> list[int]:
        with self._lock:
            return sorted(p.pid for p in self._procs)

    def start(self) -> None:
        """Spawn the missing workers in the background (idempotent)."""
        with self._lock:
            missing = self.count - len(self._procs) - self._starting
            if self._closed or missing <= 0:
                return
            self._starting += missing
        for _ in range(missing):
            threading.Thread(target=self._spawn, name="telemetry-worker-start", daemon=True).start()

    def _spawn(self) -> None:
        context = multiprocessing.get_context("spawn")
        jobs_r, jobs_w = context.Pipe(duplex=False)
        answers_r, answers_w = context.Pipe(duplex=False)
        proc = None
        try:
            proc = context.Process(
                target=_worker_main,
                args=(jobs_r, answers_w, self.settings, self.salt, self.write_key, os.getpid()),
                name="telemetry-collector-worker",
                daemon=True,
            )
            proc.start()
            jobs_r.close()  # the worker's ends: closed here, so a dead worker reads as EOF
            answers_w.close()
            first = answers_r.poll(120) and _read_frame(answers_r.fileno())
            if not first:
                raise RuntimeError("the worker did not report ready within 120 s")
            _, pid = pickle.loads(first)
            os.set_blocking(jobs_w.fileno(), False)
            os.set_blocking(answers_r.fileno(), False)
        except Exception:
            log.exception("a collector worker did not start; requests are prepared in the serve")
            if proc is not None and proc.is_alive():
                proc.kill()
            for conn in (jobs_w, answers_r):
                conn.close()
            with self._lock:
                self._starting -= 1
            return
        worker = _Proc(proc, jobs_w, answers_r, pid)
        with self._lock:
            self._starting -= 1
            if not self._closed:
                self._procs.append(worker)
                log.info("collector worker %d ready", pid)
                return
        self._stop(worker)

    async def run(self, job: Job) -> Outcome | None:
        """The job done by a worker; None when none is ready (do it in the serve instead).

        Raises WorkersUnavailable when the worker died with it (another is being started).
        """
        loop = asyncio.get_running_loop()
        self._attach(loop)
        if not self._idle and not any(p.current is not None for p in self._procs_in(loop)):
            self.start()
            return None
        future: asyncio.Future[tuple[Any, ...]] = loop.create_future()
        self._waiting.append((pickle.dumps(job, protocol=5), future))
        self._dispatch()
        answer = await future
        if answer[0] == "raised":
            raise RuntimeError(f"collector worker: {answer[1]}: {answer[2]}")
        return _outcome(answer)

    def _procs_in(self, loop: asyncio.AbstractEventLoop) -> list[_Proc]:
        with self._lock:
            return [p for p in self._procs if p.loop is loop]

    def _attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Watch the answers of the workers not yet watched by this loop (new ones, or after the
        loop changed: a test's loop per test); their pipes are then read here."""
        with self._lock:
            fresh = [p for p in self._procs if p.loop is not loop]
        if not fresh:
            return
        for p in fresh:
            if p.loop is not None and p.current is None:
                with contextlib.suppress(Exception):  # the old loop may be closed already
                    p.loop.remove_reader(p.rfd)
            elif p.loop is not None:
                continue  # busy in another running loop: leave it there
            p.loop = loop
            loop.add_reader(p.rfd, self._readable, p)
            self._idle.append(p)
        # each free worker of this loop once (one moved from another loop was idle there too)
        self._idle = deque(p for p in dict.fromkeys(self._idle) if p.loop is loop and p.current is None)

    def _dispatch(self) -> None:
        while self._idle and self._waiting:
            data, future = self._waiting.popleft()
            if future.done():
                continue
            worker = self._idle.popleft()
            worker.current = future
            self._send(worker, _HEADER.pack(len(data)) + data)

    def _send(self, worker: _Proc, frame: bytes) -> None:
        try:
            sent = os.write(worker.wfd, frame)
        except BlockingIOError:
            sent = 0
        except OSError:
            self._died(worker)
            return
        worker.outbuf = frame[sent:]
        if worker.outbuf and worker.loop is not None:
            worker.loop.add_writer(worker.wfd, self._writable, worker)

    def _writable(self, worker: _Proc) -> None:
        try:
            sent = os.write(worker.wfd, worker.outbuf)
        except BlockingIOError:
            return
        except OSError:
            self._died(worker)
            return
        worker.outbuf = worker.outbuf[sent:]
        if not worker.outbuf and worker.loop is not None:
            worker.loop.remove_writer(worker.wfd)

    def _readable(self, worker: _Proc) -> None:
        try:
            chunk = os.read(worker.rfd, 1 << 20)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._died(worker)
            return
        buf = worker.inbuf
        buf += chunk
        while len(buf) >= _HEADER.size:
            (size,) = _HEADER.unpack_from(buf)
            if len(buf) < _HEADER.size + size:
                break
            answer = pickle.loads(bytes(buf[_HEADER.size : _HEADER.size + size]))
            del buf[: _HEADER.size + size]
            future, worker.current = worker.current, None
            self._idle.append(worker)
            if future is not None and not future.done():
                future.set_result(answer)
        self._dispatch()

    def _died(self, worker: _Proc) -> None:
        """A worker's pipe broke: it died. Fail its job, forget it, start another."""
        loop = worker.loop
        with self._lock:
            if worker not in self._procs:
                return
            self._procs.remove(worker)
            self.restarts += 1
        if loop is not None:
            loop.remove_reader(worker.rfd)
            loop.remove_writer(worker.wfd)
        with contextlib.suppress(ValueError):
            self._idle.remove(worker)
        future, worker.current = worker.current, None
        if future is not None and not future.done():
            future.set_exception(WorkersUnavailable(f"collector worker {worker.pid} stopped"))
        log.warning("collector worker %d died; starting another (restart %d)", worker.pid, self.restarts)
        self._stop(worker)
        self.start()
        if loop is not None and not self._procs_in(loop):
            # nothing can take the waiting jobs now: they get 503 + Retry-After, as SDKs expect
            while self._waiting:
                _, waiting = self._waiting.popleft()
                if not waiting.done():
                    waiting.set_exception(WorkersUnavailable("no collector worker is running"))

    @staticmethod
    def _stop(worker: _Proc) -> None:
        for conn in (worker.jobs, worker.answers):
            with contextlib.suppress(OSError):
                conn.close()
        worker.proc.join(5)  # the closed jobs pipe ends it
        if worker.proc.is_alive():
            worker.proc.kill()
            worker.proc.join(5)

    def close(self) -> None:
        """Stop every worker (from any thread; the serve calls it once it stopped taking requests)."""
        with self._lock:
            self._closed = True
            procs, self._procs = self._procs, []
        for worker in procs:
            loop = worker.loop
            if loop is not None and not loop.is_closed():
                with contextlib.suppress(Exception):
                    loop.call_soon_threadsafe(_forget, loop, worker.rfd, worker.wfd)
            self._stop(worker)


def _forget(loop: asyncio.AbstractEventLoop, rfd: int, wfd: int) -> None:
    loop.remove_reader(rfd)
    loop.remove_writer(wfd)


__all__ = ["Job", "Outcome", "Workers", "WorkersUnavailable", "decode_job", "do_job", "map_request"]
