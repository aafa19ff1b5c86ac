"""Command line: `costtop` (`--wall`: the wall screen), `costtop demo`, `costtop snapshot`, `costtop db init`,
`costtop pricing`.

Every failure the user can cause (a bad flag, a bad URL, a refused connection) ends in one line on
stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from datetime import UTC, date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from costtop.allocator import pin_mmap_threshold
from costtop.collector import space_full_collections
from costtop.config import ConfigError, Settings, load_settings

MAX_DEMO_RATE = 10_000.0  # the simulator writes every call to real servers: more only measures the machine

if TYPE_CHECKING:
    from costtop.sources.feed import LiveFeed


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--redis-url", help="Redis URL (env COSTTOP_REDIS_URL); redis+cluster:// for a Redis Cluster")
    parser.add_argument("--database-url", help="PostgreSQL URL (env COSTTOP_DATABASE_URL)")
    parser.add_argument("--audit-database-url", help="the primary's URL when --database-url is a read replica: "
                        "audit rows, the rollup and db init are written there (env COSTTOP_AUDIT_DATABASE_URL)")
    parser.add_argument("--config", type=Path, help="TOML config file (env COSTTOP_CONFIG; default: "
                        "the user config dir's costtop/config.toml)")
    parser.add_argument("--preset", choices=("litellm",), help="read a known gateway's own table: litellm "
                        "reads LiteLLM's \"LiteLLM_SpendLogs\" (env COSTTOP_PRESET; README, LiteLLM)")


WALL_HELP = ("the wall screen, for a monitor across the room: burn rate, today and the day budget in large "
             "digits, the fleet's state as a colour, the top agents and the alerts; implies --read-only")
THEME_HELP = ("colour theme: costtop-dark (default), incident, daylight, wallboard, or one of yours in the "
              "config dir's costtop/themes/")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="costtop", description="top for LLM spend")
    _common(parser)
    parser.add_argument("--refresh", type=float, metavar="SECONDS", help="refresh interval (default 1)")
    parser.add_argument("--read-only", action="store_true", default=None, help="never write anything")
    parser.add_argument("--theme", metavar="NAME", help=THEME_HELP)
    parser.add_argument("--wall", action="store_true", default=None, help=WALL_HELP)
    commands = parser.add_subparsers(dest="command")
    demo = commands.add_parser("demo", help="start real servers and a simulated gateway, then the app")
    demo.add_argument("--rate", type=float, default=40.0, help="simulated calls per second (default 40)")
    demo.add_argument("--incident-after", type=float, default=30.0, metavar="SECONDS",
                      help="when the scripted runaway loop starts (default 30)")
    demo.add_argument("--refresh", type=float, metavar="SECONDS", dest="demo_refresh",
                      help="refresh interval (default 1)")
    demo.add_argument("--read-only", action="store_true", default=None, dest="demo_read_only",
                      help="never write anything: the kill keys are shown disabled")
    demo.add_argument("--theme", dest="demo_theme", metavar="NAME", help=THEME_HELP)
    demo.add_argument("--wall", action="store_true", default=None, dest="demo_wall", help=WALL_HELP)
    snapshot = commands.add_parser("snapshot", help="print the numbers the screen would show, once (for scripts)")
    _common(snapshot)
    snapshot.add_argument("--format", choices=("table", "json", "csv"), default="table",
                          help="table (default), json (documented shape, version 1) or csv (one row per agent)")
    serve = commands.add_parser("serve", help="the same app in a browser (read-only unless --allow-writes)")
    _common(serve)
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine)")
    serve.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080)")
    serve.add_argument("--allow-writes", action="store_true", help="let the browser kill and resume (default: no)")
    serve.add_argument("--insecure-writes", action="store_true",
                       help="allow --allow-writes on an address other than loopback, over plain HTTP")
    serve.add_argument("--theme", dest="serve_theme", metavar="NAME", help=THEME_HELP)
    report = commands.add_parser("report", help="a Markdown report of one UTC day (spend, traces, alerts, switches)")
    _common(report)
    report.add_argument("--day", required=True, help="the UTC day, YYYY-MM-DD")
    report.add_argument("--out", type=Path, help="write it here (default: standard output)")
    db = commands.add_parser("db", help="database commands")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    init = db_commands.add_parser("init", help="create tool_calls if missing, and the audit table")
    _common(init)
    rollup = commands.add_parser("rollup", help="keep the rollup that makes start-up instant (for cron or systemd)")
    _common(rollup)
    rollup.add_argument("--since", metavar="YYYY-MM-DD",
                        help="on the first run, roll up from this UTC day (default: the month's first day or "
                             "8 days back, whichever is earlier)")
    rollup.add_argument("--verify-hours", type=int, default=24, metavar="N",
                        help="check the last N hours' row counts and roll again those that changed (default 24)")
    rollup.add_argument("--keep-minutes-days", type=int, default=8, metavar="N",
                        help="delete minute buckets older than N days; hours and days stay (default 8)")
    pricing = commands.add_parser("pricing", help="the price list used for flat-rate calls' shadow cost")
    pricing_commands = pricing.add_subparsers(dest="pricing_command", required=True)
    sync = pricing_commands.add_parser("sync", help="fetch OpenRouter's public models list into a dated local copy")
    sync.add_argument("--url", help="the models list to fetch (default: pricing_url setting, OpenRouter's)")
    pricing_commands.add_parser("show", help="where the current prices come from, and how many models")
    return parser


def demo_settings(args: argparse.Namespace) -> Settings:
    """`costtop demo`'s settings: its own --refresh, --read-only, --theme and --wall over the usual ones
    (the servers' URLs are the demo's, set when they have started)."""
    extra = {"refresh": args.demo_refresh, "read_only": args.demo_read_only, "theme": args.demo_theme,
             "wall": args.demo_wall}
    return _settings(args, **{k: v for k, v in extra.items() if v is not None})


def _settings(args: argparse.Namespace, **extra: Any) -> Settings:
    cli = {"redis_url": args.redis_url, "database_url": args.database_url,
           "audit_database_url": getattr(args, "audit_database_url", None),
           "refresh": getattr(args, "refresh", None), "read_only": getattr(args, "read_only", None),
           "theme": getattr(args, "theme", None), "wall": getattr(args, "wall", None),
           "preset": getattr(args, "preset", None), **extra}
    return load_settings(cli, config_path=args.config)


def fail(message: str) -> int:
    print(f"costtop: {message}", file=sys.stderr)
    return 2


async def _db_init(settings: Settings) -> list[str]:
    import asyncpg

    from costtop.sources.errors import SourceError
    from costtop.sources.postgres import PG_ERRORS
    from costtop.sources.schema import init_db
    from costtop.text import mask_url, one_line

    url = settings.audit_database_url or settings.database_url  # the primary, when reading a replica
    try:
        conn = await asyncpg.connect(url, timeout=settings.timeout_seconds)
    except (*PG_ERRORS, ValueError) as exc:
        raise SourceError(f"cannot connect to {mask_url(url)}: {one_line(exc, (url,))}") from None
    try:
        return await init_db(conn, settings.tables, create_calls=settings.preset is None)
    except asyncpg.ReadOnlySQLTransactionError:
        raise SourceError(f"{mask_url(url)} is a read-only standby: db init runs on the primary (set "
                          "audit_database_url, or --audit-database-url, to its URL)") from None
    except asyncpg.PostgresError as exc:
        raise SourceError(one_line(exc)) from None
    finally:
        await conn.close()


def run_app(settings: Settings) -> int:
    from costtop.session import Session
    from costtop.sources.feed import LiveFeed
    from costtop.ui.app import CosttopApp, binding_groups, unknown_binding_ids

    unknown = unknown_binding_ids(settings.keymap)
    if unknown:
        known = ", ".join(sorted({b.id for _, g in binding_groups() for b in g if b.id}))
        return fail(f"keymap: no binding called {', '.join(unknown)} (there are: {known})")
    try:
        feed = LiveFeed(settings)
    except ValueError as exc:  # settings checked both URLs; only the Redis client is built here
        return fail(f"redis_url: {exc}")
    CosttopApp(settings, Session(settings, feed)).run()
    for line in quit_notes(feed):
        print(line, file=sys.stderr)
    return 0


def quit_notes(feed: LiveFeed) -> list[str]:
    """What the operator must know on leaving: audit rows still waiting, and a spool that could not be
    written (a full disk): the rows it failed to keep are not anywhere but in this message's past."""
    notes = []
    waiting = feed.audit_pending()
    if waiting:
        notes.append(f"costtop: {waiting} audit row{'s' if waiting > 1 else ''} could not be written to Postgres; "
                     f"kept in {feed.spool.path}, written the next time costtop reaches it.")
    if feed.audit_lost:
        notes.append(f"costtop: {feed.audit_lost} audit row{'s' if feed.audit_lost > 1 else ''} kept nowhere: "
                     f"Postgres did not take {'them' if feed.audit_lost > 1 else 'it'} and the audit spool "
                     f"{feed.spool.path} could not be written (the dialog said which).")
    if feed.spool.error:
        notes.append(f"costtop: the audit spool {feed.spool.path} cannot be written ({feed.spool.error}): "
                     "free space there, or the next Postgres outage loses audit rows.")
    return notes


FIRST_DAY = date(2000, 1, 1)  # the report reads the 7 days before: far from datetime's year 1


def check_day(raw: str, today: date) -> str | None:
    """Why `report --day` cannot be used, or None: exactly YYYY-MM-DD, a real date, not in the future."""
    from costtop.text import clean

    got = f"(got {clean(raw, 40)!r})"
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
        return f"must be a date like 2026-11-21 {got}"
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        return f"is not a real date {got}"
    if not FIRST_DAY <= day <= today:
        return f"must be between {FIRST_DAY} and today, {today} (UTC) {got}"
    return None


def report_command(args: argparse.Namespace) -> int:
    from datetime import datetime

    from costtop.report import build
    from costtop.sources.errors import SourceError

    problem = check_day(args.day, datetime.now(UTC).date())
    if problem:
        return fail(f"report: --day {problem}")
    try:
        text = asyncio.run(build(_settings(args), args.day))
    except SourceError as exc:
        return fail(f"report: {exc}")
    if args.out is None:
        sys.stdout.write(text)
        return 0
    try:
        args.out.write_text(text, encoding="utf-8")
    except OSError as exc:
        return fail(f"report: cannot write {args.out}: {exc.strerror or exc}")
    return 0


def rollup_command(args: argparse.Namespace) -> int:
    """One run of the rollup job (rollup/job.py): 0 when done or when another run holds the lock."""
    from datetime import datetime

    from costtop.rollup.job import RollupError, run_rollup

    since = None
    if args.since is not None:
        try:
            since = datetime.strptime(args.since, "%Y-%m-%d").replace(tzinfo=UTC)
        except ValueError:
            return fail(f"rollup: --since must be a UTC day, YYYY-MM-DD (got {args.since[:40]!r})")
    if not 1 <= args.verify_hours <= 24 * 400:
        return fail(f"rollup: --verify-hours must be between 1 and 9600 (got {args.verify_hours})")
    if not 1 <= args.keep_minutes_days <= 400:
        return fail(f"rollup: --keep-minutes-days must be between 1 and 400 (got {args.keep_minutes_days})")
    try:
        result = asyncio.run(run_rollup(_settings(args), since=since, verify_hours=args.verify_hours,
                                        keep_minutes_days=args.keep_minutes_days))
    except RollupError as exc:
        return fail(f"rollup: {exc}")
    for line in result.lines:
        print(line)
    return 0


def serve_command(args: argparse.Namespace) -> int:
    """textual-serve starts `costtop` once per browser tab. The URLs go through the environment, not
    the command line, so their passwords are not in the process list; the session token is only in
    this process (serve.py). Writes are refused on an address other than loopback unless
    `--insecure-writes`: there is no TLS, so the token and every key pressed would cross the network
    in clear (an SSH tunnel to a loopback serve is the safe way to reach it from elsewhere)."""
    import os
    import secrets
    import shlex

    if not 1 <= args.port <= 65_535:
        return fail(f"serve: --port must be between 1 and 65535 (got {args.port})")
    try:
        from costtop.serve import TokenServer, is_loopback, session_url
    except ImportError:
        return fail("costtop serve needs textual-serve: pip install 'costtop[serve]'")
    remote = not is_loopback(args.host)
    if args.allow_writes and remote and not args.insecure_writes:
        return fail(f"serve: --allow-writes on {args.host} (not loopback) without TLS is refused; serve on 127.0.0.1 "
                    "and use an SSH tunnel, or add --insecure-writes")
    settings = _settings(args, **({"theme": args.serve_theme} if args.serve_theme else {}))
    os.environ["COSTTOP_REDIS_URL"] = settings.redis_url
    os.environ["COSTTOP_DATABASE_URL"] = settings.database_url
    if settings.audit_database_url:
        os.environ["COSTTOP_AUDIT_DATABASE_URL"] = settings.audit_database_url
    for inherited in ("COSTTOP_VIA", "COSTTOP_CLIENT"):  # set per session, never taken from here
        os.environ.pop(inherited, None)
    command = [sys.executable, "-m", "costtop", "--theme", settings.theme]
    if args.config:
        command += ["--config", str(args.config)]
    if settings.preset:  # from the flag or the environment: each tab's costtop reads the same table
        command += ["--preset", settings.preset]
    if not args.allow_writes:
        command.append("--read-only")
    if args.allow_writes and remote:
        print(f"costtop serve: WARNING: kill and resume are allowed over plain HTTP on {args.host}: anyone who "
              "can see this traffic can take the token and kill agents", file=sys.stderr, flush=True)
    token = secrets.token_urlsafe(32)
    mode = "kill and resume allowed" if args.allow_writes else "read-only"
    print(f"costtop serve: {session_url(args.host, args.port, token)} ({mode})", flush=True)
    if args.host in ("0.0.0.0", "::"):
        print("costtop serve: listening on every address; from another machine, use this one's name in the URL",
              flush=True)
    TokenServer(shlex.join(command), host=args.host, port=args.port, token=token, title="costtop").serve()
    return 0


def snapshot_command(args: argparse.Namespace) -> int:
    from costtop.oneshot import exit_code, read_once, render
    from costtop.text import mask_url, one_line

    settings = _settings(args)
    try:
        snap = asyncio.run(read_once(settings))
    except ValueError as exc:  # settings checked both URLs; said with both, masked, in case one slipped through
        return fail(f"redis_url {mask_url(settings.redis_url)} or database_url {mask_url(settings.database_url)}: "
                    f"{one_line(exc, (settings.redis_url, settings.database_url))}")
    sys.stdout.write(render(snap, args.format))
    for source in snap.sources:
        if not source.connected:
            print(f"costtop: {source.name}: {source.error}", file=sys.stderr)
    return exit_code(snap)


def pricing_command(args: argparse.Namespace) -> int:
    from costtop.pricing.catalog import current, data_dir
    from costtop.pricing.sync import SyncError, sync

    if args.pricing_command == "show":
        catalog = current()
        print(f"{len(catalog.prices)} models, as of {catalog.as_of}: {catalog.source}")
        return 0
    settings = load_settings({}, config_path=args.config)
    url = args.url or settings.pricing_url
    try:
        report = sync(url, data_dir(), timeout=max(10.0, settings.timeout_seconds * 5))
    except SyncError as exc:
        return fail(f"pricing sync: {exc}; the previous catalog is kept")
    except OSError as exc:
        return fail(f"pricing sync: cannot write {data_dir()}: {exc.strerror}; the previous catalog is kept")
    print(f"{report.models} models priced ({report.skipped} left out without usable prices), saved to {report.saved}")
    for line in report.moved:
        print(f"moved more than 30 %: {line}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    pin_mmap_threshold()  # a dashboard left open for days must not creep (allocator.py)
    space_full_collections()  # nor stop for a full garbage collection every few seconds (collector.py)
    try:
        if args.command == "demo":
            from costtop.demo.run import run_demo

            if not 0 < args.rate <= MAX_DEMO_RATE:  # also NaN
                return fail(f"demo: --rate must be above 0 and at most {MAX_DEMO_RATE:g} calls per second "
                            f"(got {args.rate:g})")
            if not 0 <= args.incident_after <= 86_400:
                return fail(f"demo: --incident-after must be between 0 and 86400 seconds (got {args.incident_after:g})")

            return run_demo(demo_settings(args), rate=args.rate, incident_after=args.incident_after)
        if args.command == "report":
            return report_command(args)
        if args.command == "serve":
            return serve_command(args)
        if args.command == "snapshot":
            return snapshot_command(args)
        if args.command == "pricing":
            return pricing_command(args)
        if args.command == "rollup":
            return rollup_command(args)
        if args.command == "db":
            from costtop.sources.errors import SourceError

            settings = _settings(args)
            try:
                for line in asyncio.run(_db_init(settings)):
                    print(line)
            except SourceError as exc:
                return fail(str(exc))
            return 0
        return run_app(_settings(args))
    except ConfigError as exc:
        return fail(str(exc))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
