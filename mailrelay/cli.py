"""Subcommands: parse arguments, call one function each, map errors to exit codes."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from mailrelay.errors import say as _say

EXIT_OK, EXIT_POLL_FAILED, EXIT_CONFIG = 0, 1, 2
DEFAULT_CONFIG = os.environ.get("MAILRELAY_CONFIG", "config/mailrelay.toml")


def main(argv: list[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    # Imports here keep `mailrelay --help` quick.
    from mailrelay.i18n import choose_language, set_language
    from mailrelay.logs import configure_logging

    set_language(choose_language(arguments.lang))
    quiet = arguments.command in _QUIET
    configure_logging(arguments.log_level or ("warning" if quiet else "info"),
                      stream=sys.stderr if quiet else sys.stdout)
    try:
        return arguments.handler(arguments)
    except (Exception, KeyboardInterrupt, SystemExit) as error:  # one line for people; other BaseExceptions pass
        from mailrelay.errors import exit_code_of

        code = exit_code_of(error, arguments.command, arguments.config, quiet)
        if code is None:
            raise
        return code


_QUIET = ("explain", "check", "demo", "evaluate", "replay", "audit", "status", "quarantine", "review",
          "migrate")  # their output is for people; events go to stderr, warnings only


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mailrelay", description="Relay for the Clusterplattform inbox: classify, route, forward, audit.")
    parser.add_argument("--config", type=Path, default=Path(DEFAULT_CONFIG), help="main config file (TOML)")
    parser.add_argument("--log-level", choices=("debug", "info", "warning", "error"),
                        help="default: info for once/run, warning for the commands people read")
    parser.add_argument("--lang", choices=("de", "en"),
                        help="language of what the commands say (default: German, English when LANG is English)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("once", help="poll the inbox once, then exit").set_defaults(handler=_once)
    commands.add_parser("run", help="run as a service: poll on a schedule").set_defaults(handler=_run)
    commands.add_parser("check", help="validate config, rules and templates").set_defaults(handler=_check)
    from mailrelay.editorcli import add_editor_commands
    from mailrelay.queues.cli import add_queue_commands

    from mailrelay.web.cli import add_web_commands

    add_editor_commands(commands)
    add_queue_commands(commands)
    add_web_commands(commands)
    commands.add_parser("resume", help="lift a pause the flood brake set").set_defaults(handler=_resume)
    status = commands.add_parser("status", help="health for people and monitors: exit 0 healthy, 1 degraded, 2 failing")
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=_status)
    commands.add_parser("purge", help="drop raw mails older than keep_raw_days now (the service does it daily)"
                        ).set_defaults(handler=_purge)
    migrate = commands.add_parser("migrate", help="move a SQLite state into an empty PostgreSQL database")
    migrate.add_argument("--from", dest="source", type=Path, required=True, metavar="PATH", help="the SQLite state file")
    migrate.add_argument("--to", dest="target", required=True, metavar="URL",
                         help="postgresql://USER@HOST/DATABASE (the password from --password-file or PGPASSWORD)")
    migrate.add_argument("--password-file", type=Path, metavar="FILE")
    migrate.add_argument("--ca-file", type=Path, metavar="FILE", help="the CA that signed the database's certificate")
    migrate.set_defaults(handler=_migrate)
    audit = commands.add_parser("audit", help="the audit trail: verify, list, show, export")
    from mailrelay.auditcli import add_audit_commands  # argparse only; the work is imported when it runs

    add_audit_commands(audit)
    demo = commands.add_parser("demo", help="run the relay over a bundled sample inbox, no servers needed")
    demo.add_argument("--workdir", type=Path, default=Path("mailrelay-demo"))
    demo.set_defaults(handler=_demo)
    return parser


def _return_freed_memory() -> None:
    """Have glibc give large freed blocks back to the system. Its default raises the size it serves from
    mmap after each large block is freed, so a 20 MB mail freed makes the next one come from the heap,
    which seldom shrinks: the service would keep the size of its largest mails for good."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        mallopt = libc.mallopt if libc else None
    except (OSError, AttributeError):  # not glibc: nothing to tune
        return
    if mallopt:
        mallopt(-3, 128 * 1024)  # M_MMAP_THRESHOLD, fixed: blocks from 128 kB on are mapped and unmapped
        mallopt(-1, 128 * 1024)  # M_TRIM_THRESHOLD, back to its default if a large free had raised it


def _once(arguments) -> int:
    from mailrelay import health, statusfile
    from mailrelay.i18n import tr
    from mailrelay.sources.base import SourceError

    _return_freed_memory()
    settings, store, relay = _open(arguments.config)
    try:
        report = relay.poll()
        relay.purge()
    except SourceError as error:
        _say(tr(f"die Abfrage konnte nicht laufen: {error}; Server, Port und Zugangsdaten in [imap] prüfen",
                f"the poll could not run: {error}; check the server, port and login in [imap]"))
        return EXIT_POLL_FAILED
    except Exception as error:  # a bug: say so, exit as a failed poll; the traceback goes to the log
        relay.log.exception("poll.crashed")
        _say(tr(f"die Abfrage ist gescheitert: {type(error).__name__}: {error} (Einzelheiten im Log)",
                f"the poll failed: {type(error).__name__}: {error} (details in the log)"))
        return EXIT_POLL_FAILED
    else:
        _say_deferred(report)
    finally:
        written = statusfile.written_path()
        if written:  # a timer running `once` under systemd: monitors read this like the service's
            statusfile.write(written, health.facts(store))
        if getattr(store, "lease", None):
            store.lease.release()
        store.close()
    return EXIT_OK


def _say_deferred(report) -> None:
    """A poll that ran but could not send: one line, so a person running `once` is not left with the log."""
    from mailrelay.i18n import tr

    deferred = [mail for mail in report.mails if mail["outcome"] == "deferred"]
    if deferred:
        _say(tr(f"{len(deferred)} Mail(s) nicht gesendet, sie warten auf den nächsten Versuch: "
                "ist der SMTP-Server in [smtp] erreichbar? (mail.deferred im Log nennt die Antwort)",
                f"{len(deferred)} mail(s) not sent, they wait for the next try: can the SMTP server in [smtp] "
                "be reached? (mail.deferred in the log has its reply)"))


def _run(arguments) -> int:
    from mailrelay import statusfile
    from mailrelay.daemon import Daemon
    from mailrelay.metrics import Metrics, listen_address

    _return_freed_memory()
    listen = listen_address(arguments.config)
    settings, store, relay = _open(arguments.config, shared_ok=True)
    watcher = None
    if settings.imap and settings.imap.idle:
        from mailrelay.idle import IdleWatcher

        def watcher(wake):
            return IdleWatcher(settings.imap, wake)
    metrics = Metrics() if listen else None
    try:
        if metrics:
            relay.log.info("metrics.listening", address=f"{listen.host}:{metrics.serve(listen)}")
        Daemon(relay, relay.policy, settings.poll_seconds, watcher=watcher, metrics=metrics,
               status_path=statusfile.written_path(), lease=_lease(settings, store)).run()
    finally:
        if metrics:
            metrics.stop()
        store.close()
    return EXIT_OK


def _open(config: Path, shared_ok: bool = False):
    """Settings, the locked store and the relay; refuses a second instance on the same state. A shared
    (PostgreSQL) state is locked by its lease: `run` waits for it (shared_ok), `once` takes it or refuses."""
    from mailrelay.app import PolicyHolder, build_relay
    from mailrelay.config import exposed_secrets, load_settings
    from mailrelay.state import AlreadyRunning, open_state

    settings = load_settings(config)
    policy = PolicyHolder(settings)
    store = open_state(settings)
    try:
        store.lock()
        if settings.state_url and not shared_ok:
            _take_lease_once(settings, store)
    except AlreadyRunning:
        store.close()
        raise
    relay = build_relay(settings, store, policy)
    from mailrelay.reloads import in_force

    if not settings.state_url or not shared_ok:  # a standby records nothing; the daemon does it when active
        in_force(store, policy().version)  # the files as they are now load: a change refused before is moot
    for warning in exposed_secrets(settings):
        relay.log.warning("secret.exposed", problem=warning)
    return settings, store, relay


def _lease(settings, store):
    """The lease for a shared state, None for a SQLite file."""
    if not settings.state_url:
        return None
    from mailrelay.state import state_conninfo
    from mailrelay.state.lease import Lease

    return Lease(state_conninfo(settings), settings.node, settings.failover_seconds, prepare=store.prepare)


def _take_lease_once(settings, store) -> None:
    """For a single poll beside other nodes: this node must hold the lease for it, or not poll at all."""
    from mailrelay.state import AlreadyRunning

    store.prepare()  # a database that cannot be reached says so, not "another node holds it"
    lease = _lease(settings, store)
    if not lease.acquire_once():
        row = lease.holder() or {}
        raise AlreadyRunning(f"another node holds the lease of the shared state: {row.get('holder') or '?'}"
                             f" (epoch {row.get('epoch')})")
    store.epoch, store.lease = lease.epoch, lease  # released by _once when the poll is done


def _check(arguments) -> int:
    """Every problem of the main file and of the editors' files, in one run."""
    from mailrelay.config import check_secrets, editor_paths, exposed_secrets, load_settings
    from mailrelay.i18n import tr
    from mailrelay.metrics import listen_address
    from mailrelay.policy import load_policy_files
    from mailrelay.tomlcheck import ConfigError

    problems = []
    try:
        settings = load_settings(arguments.config)
    except ConfigError as error:
        problems += error.problems
    else:
        problems += check_secrets(settings)
        for warning in exposed_secrets(settings):
            print(f"{tr('Warnung', 'warning')}: {warning}", file=sys.stderr)
    from mailrelay.web.config import web_settings

    for read_table in (listen_address, web_settings):  # [metrics] and [web]
        try:
            read_table(arguments.config)
        except ConfigError as error:
            problems += error.problems
    paths = editor_paths(arguments.config)
    try:
        policy = load_policy_files(*paths) if paths else None
    except ConfigError as error:
        problems += error.problems
    if problems:
        raise ConfigError(problems)
    rules, desks = len(policy.rules.rules), len(policy.rules.desks)
    print(tr(f"{arguments.config}: in Ordnung (Regelversion {policy.version}, {rules} Regeln, {desks} Referate)",
             f"{arguments.config}: OK (rules version {policy.version}, {rules} rules, {desks} desks)"))
    return EXIT_OK


def _resume(arguments) -> int:
    from mailrelay.config import load_settings
    from mailrelay.i18n import tr
    from mailrelay.state import open_state

    store = open_state(load_settings(arguments.config))
    try:
        reason = store.paused()
        print(tr(f"Weiterleitung fortgesetzt (angehalten war sie: {reason})", f"resumed (was paused: {reason})")
              if store.resume() else tr("die Weiterleitung war nicht angehalten", "forwarding was not paused"))
    finally:
        store.close()
    return EXIT_OK


def _status(arguments) -> int:
    from mailrelay.statuscli import status

    return status(arguments.config, arguments.json)


def _purge(arguments) -> int:
    from mailrelay.app import PolicyHolder, build_relay
    from mailrelay.config import load_settings
    from mailrelay.i18n import tr
    from mailrelay.state import open_state

    settings = load_settings(arguments.config)
    store = open_state(settings)  # no lock: the store serialises the purge with a running service
    try:
        purged = build_relay(settings, store, PolicyHolder(settings)).purge()
    finally:
        store.close()
    print(tr(f"die Originale von {purged} Mail(s) gelöscht, die älter als {settings.keep_raw_days} Tage sind",
             f"purged the raw bytes of {purged} mail(s) older than {settings.keep_raw_days} days"))
    return EXIT_OK


def _migrate(arguments) -> int:
    from mailrelay.i18n import tr
    from mailrelay.state import conninfo_for
    from mailrelay.state.migrate import MigrationError, migrate

    try:
        password = arguments.password_file.read_text(encoding="utf-8").strip() if arguments.password_file else ""
        moved = migrate(arguments.source, conninfo_for(arguments.target, password, arguments.ca_file))
    except (MigrationError, OSError) as error:
        _say(tr(f"nicht übertragen: {error}", f"not moved: {error}"))
        return EXIT_POLL_FAILED
    print(moved.describe())
    print(tr("jetzt in [state] path durch url ersetzen und die Dienste starten",
             "now replace [state] path by url and start the services"))
    return EXIT_OK


def _demo(arguments) -> int:
    from mailrelay.demo import run_demo

    print(run_demo(arguments.workdir))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
