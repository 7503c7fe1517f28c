"""Group commit: the batches of concurrent collector requests are stored in one transaction.

A commit costs about as much for 100 events as for 1,000, so one writer thread takes every batch
that is waiting, commits them together and answers each request with its own report. A request is
answered only after its commit: an HTTP 200 still means committed.
"""

from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import Future

from telemetry_mcp.store.ingest import Ingestor, IngestReport, Prepared

log = logging.getLogger(__name__)

MAX_GROUP_EVENTS = 20_000  # one transaction's worth; bigger groups only add latency


class Overloaded(Exception):
    """More events are waiting to be committed than the backlog allows (answer 503, Retry-After)."""


class Committer:
    """One writer thread for one store's collector."""

    def __init__(self, ingestor: Ingestor, max_backlog_events: int = 200_000) -> None:
        self.ingestor = ingestor
        self.max_backlog_events = max_backlog_events
        self._queue: queue.SimpleQueue[tuple[Prepared, Future[IngestReport]] | None] = queue.SimpleQueue()
        self._backlog = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="telemetry-committer", daemon=True)
        self._thread.start()

    @property
    def backlog(self) -> int:
        """Events waiting for their commit."""
        return self._backlog

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def submit(self, prepared: Prepared) -> Future[IngestReport]:
        """Queue a prepared batch; the future resolves after its commit (or with the commit's error)."""
        rows = _rows(prepared)
        with self._lock:
            if rows and self._backlog + rows > self.max_backlog_events:
                raise Overloaded(f"{self._backlog:,} events are waiting to be committed")
            self._backlog += rows
        future: Future[IngestReport] = Future()
        self._queue.put((prepared, future))
        return future

    def close(self, timeout: float = 30.0) -> None:
        """Commit what is queued, then stop the writer thread."""
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            group = [item]
            events = _rows(item[0])
            stop = False
            while events < MAX_GROUP_EVENTS:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                group.append(more)
                events += _rows(more[0])
            self._commit(group)
            with self._lock:
                self._backlog -= events
            if stop:
                return

    def _commit(self, group: list[tuple[Prepared, Future[IngestReport]]]) -> None:
        try:
            reports = self.ingestor.commit_group([p for p, _ in group])
        except BaseException as exc:  # the requests are answered with the error; the thread lives on
            log.exception("group commit of %d batches failed", len(group))
            for _, future in group:
                future.set_exception(exc)
            return
        for (_, future), report in zip(group, reports, strict=True):
            future.set_result(report)


def _rows(prepared: Prepared) -> int:
    return prepared.table.num_rows if prepared.table is not None else 0
