"""One owner per store, and how every other process finds it.

DuckDB's own file lock decides who owns a store: the process that opened it read-write. The owner
writes `<store>.owner` beside the store file (mode 0600, so only the store's user can read it):
its pid, the address of its HTTP service and a random secret that the other telemetry-mcp
processes present as a bearer token. After a kill -9 the file stays behind, stale: readers check
that the pid is alive and that the address answers `/health` with the same owner id; the next
process to open the store overwrites it. The lock itself is released by the OS when the owner dies.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from telemetry_mcp.config import Settings
from telemetry_mcp.errors import StoreLockedError
from telemetry_mcp.store import Store


@dataclass(frozen=True)
class OwnerInfo:
    """What `<store>.owner` holds."""

    pid: int
    url: str  # base URL of the owner's HTTP service, e.g. http://127.0.0.1:8000
    secret: str  # bearer token other telemetry-mcp processes use on /mcp and /admin
    owner_id: str  # public: /health answers it, so a reader can tell a live owner from a stale file
    kind: str  # "serve" or "stdio"
    started_at: float

    @staticmethod
    def new(url: str, kind: str) -> OwnerInfo:
        return OwnerInfo(
            pid=os.getpid(),
            url=url,
            secret=secrets.token_urlsafe(32),
            owner_id=secrets.token_hex(8),
            kind=kind,
            started_at=time.time(),
        )


def owner_file(settings: Settings) -> Path:
    base = Path(settings.db).expanduser()
    return base.with_name(base.name + ".owner")


def write_owner(settings: Settings, info: OwnerInfo) -> None:
    """Write the owner file atomically, readable by this user only."""
    path = owner_file(settings)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(asdict(info), f)
    os.replace(tmp, path)


def read_owner(settings: Settings) -> OwnerInfo | None:
    """The owner file's content, or None when absent or unreadable (no check that it is live)."""
    try:
        data = json.loads(owner_file(settings).read_text())
        return OwnerInfo(**data)
    except (OSError, ValueError, TypeError):
        return None


def remove_owner(settings: Settings, info: OwnerInfo) -> None:
    """Remove the owner file if it is still ours (a successor may have replaced it)."""
    current = read_owner(settings)
    if current is not None and current.owner_id == info.owner_id:
        with contextlib.suppress(OSError):
            owner_file(settings).unlink()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_live(info: OwnerInfo, timeout: float = 1.0) -> bool:
    """True when the owner named by the file answers /health as itself."""
    if not pid_alive(info.pid):
        return False
    try:
        r = httpx.get(f"{info.url}/health", timeout=timeout)
        return r.status_code == 200 and r.json().get("owner_id") == info.owner_id
    except (httpx.HTTPError, ValueError):
        return False


def try_open(settings: Settings) -> Store | None:
    """Open the store read-write if no other process holds it; None when another one does."""
    try:
        return Store(settings)
    except StoreLockedError:
        return None


def find_owner(settings: Settings, wait: float) -> OwnerInfo | None:
    """A live owner of the store, waiting up to `wait` seconds for one to publish its address."""
    deadline = time.monotonic() + wait
    while True:
        info = read_owner(settings)
        if info is not None and is_live(info):
            return info
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.1)
