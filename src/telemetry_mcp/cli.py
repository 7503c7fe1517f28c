"""Command line: a thin shell over the library. `telemetry-mcp` alone serves MCP over stdio."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from telemetry_mcp import __version__
from telemetry_mcp.config import Settings, env_name, flag_name, load_settings
from telemetry_mcp.errors import StoreLockedError, TelemetryError


def _settings_parser(unset: object = None) -> argparse.ArgumentParser:
    """Flags for every setting, generated from the Settings model (with its env var in the help).

    Subcommands get `default=SUPPRESS`, so a flag given before the subcommand is not reset by it.
    """
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("settings (flag, or environment variable)")
    for name, info in Settings.model_fields.items():
        shown = "computed" if info.default_factory else info.default
        if isinstance(shown, tuple):
            shown = ",".join(shown)
        help_text = f"{info.description} [env {env_name(name)}; default {shown}]"
        if info.annotation is bool:
            group.add_argument(
                flag_name(name),
                dest=name,
                action=argparse.BooleanOptionalAction,
                default=unset,
                help=help_text,
            )
        else:
            group.add_argument(flag_name(name), dest=name, default=unset, metavar="VALUE", help=help_text)
    return parent


def build_parser() -> argparse.ArgumentParser:
    common = _settings_parser(argparse.SUPPRESS)
    parser = argparse.ArgumentParser(
        prog="telemetry-mcp",
        description="MCP server for component telemetry on an embedded DuckDB store. "
        "With no command it serves MCP over stdio on the default store.",
        parents=[_settings_parser(None)],
    )
    parser.add_argument("--version", action="version", version=f"telemetry-mcp {__version__}")
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser(
        "serve",
        parents=[common],
        help="run the service: MCP (Streamable HTTP) at /mcp, the collector, /health, /ready, /metrics",
    )
    serve.add_argument(
        "--transport",
        choices=["stdio", "http"],
        default="http",
        help="http (default): the service; stdio: as no command",
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    imp = sub.add_parser("import", parents=[common], help="load JSONL / JSON / CSV / Parquet files")
    imp.add_argument("files", nargs="+", type=Path, metavar="FILE")
    imp.add_argument("--quiet", action="store_true", help="no progress line")
    exp = sub.add_parser(
        "export",
        parents=[common],
        help="write stored events to a file that `import` reads back (works on a store a service owns)",
    )
    exp.add_argument("--format", choices=["parquet", "csv", "jsonl"], default=None, help="default: from PATH")
    exp.add_argument("--since", default=None, help="ISO date/datetime (UTC) or relative (7d); default: all")
    exp.add_argument("--until", default=None, help="exclusive end, like --since; default: now")
    exp.add_argument(
        "--filter",
        dest="filters",
        action="append",
        default=[],
        metavar="EXPR",
        help="only events meeting EXPR (repeatable, all must hold): FIELD OP VALUE with the tools' fields "
        "and ops, e.g. 'component = Button', 'duration_ms > 250', 'platform in web,mobile', "
        '\'properties.plan eq pro\', or the tools\' JSON {"field": …, "op": …, "value": …}',
    )
    exp.add_argument("path", type=Path, metavar="PATH")
    forget = sub.add_parser(
        "forget",
        parents=[common],
        help="delete every event of these users (raw ids as sent, or stored hashes)",
    )
    forget.add_argument("user_ids", nargs="+", metavar="USER_ID")
    prune = sub.add_parser(
        "prune",
        parents=[common],
        help="delete raw events older than --raw-retention-days (--dry-run: just say)",
    )
    prune.add_argument("--dry-run", action="store_true", help="say what would be deleted, delete nothing")
    sub.add_parser(
        "compact",
        parents=[common],
        help="shrink the store file after large deletions: copy it into a new file, swapped in place "
        "(ingest waits meanwhile)",
    )
    demo = sub.add_parser(
        "demo", parents=[common], help="load the fixture data into a demo store and show every tool answering"
    )
    demo.add_argument("--data", type=Path, default=None, help="JSONL to load (default: the bundled sample)")
    report = sub.add_parser(
        "report",
        parents=[common],
        help="write the daily-health / weekly-trends report: one self-contained HTML file and/or Markdown",
    )
    report.add_argument("--html", type=Path, default=None, metavar="FILE", help="write the HTML report here")
    report.add_argument(
        "--md", type=Path, default=None, metavar="FILE", help="write the Markdown report here"
    )
    report.add_argument("--kind", choices=["daily", "weekly", "both"], default="both")
    report.add_argument(
        "--until",
        default=None,
        metavar="WHEN",
        help="end of the report (ISO date/datetime, UTC; default now)",
    )
    return parser


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {name: getattr(args, name, None) for name in Settings.model_fields}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "demo":
            from telemetry_mcp.server.demo import run_demo

            return run_demo(_overrides(args), args.data)
        settings = load_settings(_overrides(args))
        logging.basicConfig(
            level=settings.log_level,
            stream=sys.stderr,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
        if args.command == "import":
            return _import(settings, args.files, quiet=args.quiet)
        if args.command in ("export", "forget", "prune", "compact"):
            return _lifecycle(settings, args)
        if args.command == "report":
            return _report(settings, args)
        transport = getattr(args, "transport", "stdio") if args.command == "serve" else "stdio"
        from telemetry_mcp.server.run import serve

        serve(settings, transport, getattr(args, "host", "127.0.0.1"), getattr(args, "port", 8000))
        return 0
    except TelemetryError as exc:
        print(str(exc) if str(exc).startswith("telemetry-mcp") else f"telemetry-mcp: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the top: one line, not a traceback (set --log-level DEBUG to see it)
        logging.getLogger(__name__).debug("unexpected error", exc_info=True)
        print(f"telemetry-mcp: unexpected error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


def _import(settings: Settings, files: list[Path], *, quiet: bool) -> int:
    from telemetry_mcp.store import Store
    from telemetry_mcp.store.importer import import_file
    from telemetry_mcp.store.ingest import Ingestor

    started = time.perf_counter()
    try:
        # The import's own store gets a smaller buffer pool: peak memory stays flat as files grow.
        store = Store(settings.model_copy(update={"memory_limit": settings.import_memory_limit}))
    except StoreLockedError:
        # A running service (or stdio server) owns the store: it imports the files itself.
        from telemetry_mcp.service.admin import run_command

        for path in files:
            result = run_command(settings, "import", {"path": str(path.expanduser().resolve())})
            for line in result.get("lines", []):
                print(line, file=sys.stderr)
        print(f"(imported by the store's owner at {result.get('via_owner', '?')})", file=sys.stderr)
        return 0
    with store:
        ingestor = Ingestor(store)
        grand = {"accepted": 0, "rejected": 0, "duplicates": 0, "dropped": 0}
        for path in files:
            bar = None
            if not quiet and path.is_file():
                from tqdm import tqdm

                bar = tqdm(
                    total=max(path.stat().st_size, 1),
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1024,
                    desc=path.name,
                    file=sys.stderr,
                    dynamic_ncols=True,
                )

            def progress(done: int, read: int, size: int, bar: Any = bar) -> None:
                if bar is not None:
                    bar.update(read - bar.n)
                    rate = done / max(bar.format_dict["elapsed"], 1e-9)
                    bar.set_postfix_str(f"{done:,} records, {rate:,.0f}/s", refresh=False)

            try:
                report = import_file(ingestor, path, progress)
            except TelemetryError as exc:
                if bar is not None:
                    bar.close()
                print(f"\ntelemetry-mcp: {exc}", file=sys.stderr)
                return 2
            if bar is not None:
                bar.close()
            print(
                f"{path}: accepted {report.accepted:,}, rejected {report.rejected:,}, "
                f"duplicates {report.duplicates:,}, dropped (do-not-track/sampling) "
                f"{report.dropped_dnt + report.sampled_out:,}, redactions {report.redactions:,}",
                file=sys.stderr,
            )
            for index, reason in report.errors[:10]:
                print(f"  record {index}: {reason}", file=sys.stderr)
            grand["accepted"] += report.accepted
            grand["rejected"] += report.rejected
            grand["duplicates"] += report.duplicates
            grand["dropped"] += report.dropped_dnt + report.sampled_out
        store.refresh_sessions()  # derive sessions now rather than on the first question
        store.checkpoint()
    elapsed = time.perf_counter() - started
    print(
        f"imported {len(files)} file(s) into {settings.db} in {elapsed:.1f} s: accepted {grand['accepted']:,}, "
        f"rejected {grand['rejected']:,}, duplicates {grand['duplicates']:,}, dropped {grand['dropped']:,}",
        file=sys.stderr,
    )
    return 0


def _lifecycle(settings: Settings, args: argparse.Namespace) -> int:
    """export / forget / prune / compact: on the store directly, or by its owner when a service runs on it."""
    from telemetry_mcp.service.admin import run_command

    body: dict[str, Any]
    if args.command == "export":
        body = _export_body(args)
    elif args.command == "forget":
        body = {"user_ids": list(args.user_ids)}
    elif args.command == "compact":
        body = {}
    else:
        body = {"dry_run": bool(args.dry_run)}
    result = run_command(settings, args.command, body)
    for line in result.get("lines", []):
        print(line)
    if result.get("via_owner"):
        print(f"(done by the store's owner at {result['via_owner']})", file=sys.stderr)
    return 0


def _export_body(args: argparse.Namespace) -> dict[str, Any]:
    from zoneinfo import ZoneInfo

    from telemetry_mcp.analytics.common import parse_filter_expression, parse_instant, utcnow
    from telemetry_mcp.errors import InvalidArgument

    path: Path = args.path
    fmt = args.format or {".parquet": "parquet", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}.get(
        path.suffix.lower()
    )
    if fmt is None:
        raise InvalidArgument(
            f"{path}: say --format parquet, csv or jsonl (or name the file .parquet/.csv/.jsonl)"
        )
    now = utcnow()
    bounds = {
        key: parse_instant(value, ZoneInfo("UTC"), now, key).isoformat()
        for key, value in (("since", args.since), ("until", args.until))
        if value is not None
    }
    # parsed here, so a malformed one is refused before anything runs; compiled where the export runs
    filters = [parse_filter_expression(text).model_dump() for text in args.filters]
    # absolute: the owner may run in another working directory
    return {"path": str(path.expanduser().resolve()), "format": fmt, **bounds, "filters": filters}


def _report(settings: Settings, args: argparse.Namespace) -> int:
    import asyncio
    from datetime import UTC, datetime

    from telemetry_mcp.server.report import write_report

    if args.html is None and args.md is None:
        print("telemetry-mcp: report needs --html FILE and/or --md FILE", file=sys.stderr)
        return 2
    try:
        until = datetime.fromisoformat(args.until) if args.until else datetime.now(UTC)
    except ValueError:
        print(
            f"telemetry-mcp: --until {args.until!r} is not an ISO date or datetime (2026-11-01)",
            file=sys.stderr,
        )
        return 2
    until = until if until.tzinfo else until.replace(tzinfo=UTC)
    report = asyncio.run(write_report(settings, args.kind, until, args.html, args.md))
    sections = [s for part in report["parts"] for s in part["sections"]]
    failed = [s["title"] for s in sections if s["error"]]
    for path in (args.html, args.md):
        if path is not None:
            print(f"wrote {path} ({len(sections)} sections up to {report['until']})", file=sys.stderr)
    for title in failed:
        print(f"  not available: {title}", file=sys.stderr)
    return 0
