"""Subcommands: parse arguments, call one function each, map errors to exit codes."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

EXIT_OK, EXIT_POLL_FAILED, EXIT_CONFIG = 0, 1, 2
DEFAULT_CONFIG = os.environ.get("MAILRELAY_CONFIG", "config/mailrelay.toml")


def main(argv: list[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    # Imports here keep `mailrelay --help` quick.
    from mailrelay.logs import configure_logging
    from mailrelay.store import AlreadyRunning
    from mailrelay.tomlcheck import ConfigError

    quiet = arguments.command in _QUIET
    configure_logging(arguments.log_level or ("warning" if quiet else "info"),
                      stream=sys.stderr if quiet else sys.stdout)
    try:
        return arguments.handler(arguments)
    except ConfigError as error:
        print(f"mailrelay: the configuration is not usable:\n{error}", file=sys.stderr)
        return EXIT_CONFIG
    except AlreadyRunning as error:
        print(f"mailrelay: {error}", file=sys.stderr)
        return EXIT_POLL_FAILED


_QUIET = ("explain", "check", "demo", "evaluate", "replay", "audit", "status")  # their output is for people; events go to stderr, warnings only


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mailrelay", description="Relay for the Clusterplattform inbox: classify, route, forward, audit.")
    parser.add_argument("--config", type=Path, default=Path(DEFAULT_CONFIG), help="main config file (TOML)")
    parser.add_argument("--log-level", choices=("debug", "info", "warning", "error"),
                        help="default: info for once/run, warning for the commands people read")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("once", help="poll the inbox once, then exit").set_defaults(handler=_once)
    commands.add_parser("run", help="run as a service: poll on a schedule").set_defaults(handler=_run)
    commands.add_parser("check", help="validate config, rules and templates").set_defaults(handler=_check)
    explain = commands.add_parser("explain", help="show what would happen to a mail file (no network)")
    explain.add_argument("mail", type=Path)
    explain.add_argument("--json", action="store_true", help="one JSON object instead of text")
    explain.set_defaults(handler=_explain)
    evaluate = commands.add_parser("evaluate", help="accuracy on a folder of labelled mails (labels.jsonl)")
    evaluate.add_argument("folder", type=Path)
    evaluate.add_argument("--against", type=Path, metavar="RULES",
                          help="another routing file: list the mails it would route differently")
    evaluate.add_argument("--json", action="store_true")
    evaluate.set_defaults(handler=_evaluate)
    replay = commands.add_parser("replay", help="what changed rules would have done to the mail already handled")
    replay.add_argument("--since", default="30d", help="how far back: 30d, 12h, 90m (default 30d)")
    replay.add_argument("--rules", type=Path, help="the changed routing file (default: the one in force)")
    replay.add_argument("--signals", type=Path, help="the changed signals file (default: the one in force)")
    replay.add_argument("--json", action="store_true")
    replay.set_defaults(handler=_replay)
    commands.add_parser("resume", help="lift a pause the flood brake set").set_defaults(handler=_resume)
    status = commands.add_parser("status", help="health for people and monitors: exit 0 healthy, 1 degraded, 2 failing")
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=_status)
    commands.add_parser("purge", help="drop raw mails older than keep_raw_days now (the service does it daily)"
                        ).set_defaults(handler=_purge)
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
    from mailrelay.sources.base import SourceError

    _return_freed_memory()
    settings, store, relay = _open(arguments.config)
    try:
        relay.poll()
        relay.purge()
    except SourceError as error:
        print(f"mailrelay: the poll could not run: {error}", file=sys.stderr)
        return EXIT_POLL_FAILED
    except Exception as error:  # a bug: say so, exit as a failed poll; the traceback goes to the log
        relay.log.exception("poll.crashed")
        print(f"mailrelay: the poll failed: {type(error).__name__}: {error}", file=sys.stderr)
        return EXIT_POLL_FAILED
    finally:
        store.close()
    return EXIT_OK


def _run(arguments) -> int:
    from mailrelay.daemon import Daemon

    _return_freed_memory()
    settings, store, relay = _open(arguments.config)
    watcher = None
    if settings.imap and settings.imap.idle:
        from mailrelay.idle import IdleWatcher

        def watcher(wake):
            return IdleWatcher(settings.imap, wake)
    try:
        Daemon(relay, relay.policy, settings.poll_seconds, watcher=watcher).run()
    finally:
        store.close()
    return EXIT_OK


def _open(config: Path):
    """Settings, the locked store and the relay; refuses a second instance on the same state."""
    from mailrelay.app import PolicyHolder, build_relay
    from mailrelay.config import exposed_secrets, load_settings
    from mailrelay.store import AlreadyRunning, Store

    settings = load_settings(config)
    policy = PolicyHolder(settings)
    store = Store(settings.state_path)
    try:
        store.lock()
    except AlreadyRunning:
        store.close()
        raise
    relay = build_relay(settings, store, policy)
    for warning in exposed_secrets(settings):
        relay.log.warning("secret.exposed", problem=warning)
    return settings, store, relay


def _check(arguments) -> int:
    """Every problem of the main file and of the editors' files, in one run."""
    from mailrelay.config import editor_paths, exposed_secrets, load_settings
    from mailrelay.policy import load_policy_files
    from mailrelay.tomlcheck import ConfigError

    problems = []
    try:
        settings = load_settings(arguments.config)
    except ConfigError as error:
        problems += error.problems
    else:
        for warning in exposed_secrets(settings):
            print(f"warning: {warning}", file=sys.stderr)
    paths = editor_paths(arguments.config)
    try:
        policy = load_policy_files(*paths) if paths else None
    except ConfigError as error:
        problems += error.problems
    if problems:
        raise ConfigError(problems)
    print(f"{arguments.config}: OK (rules version {policy.version}, {len(policy.rules.rules)} rules, "
          f"{len(policy.rules.desks)} desks)")
    return EXIT_OK


def _explain(arguments) -> int:
    from mailrelay.explain import explain_file

    text = explain_file(arguments.config, arguments.mail, as_json=arguments.json)
    print(json.dumps(text, ensure_ascii=False, indent=2) if arguments.json else text)
    return EXIT_OK


def _resume(arguments) -> int:
    from mailrelay.config import load_settings
    from mailrelay.store import Store

    store = Store(load_settings(arguments.config).state_path)
    try:
        reason = store.paused()
        print(f"resumed (was paused: {reason})" if store.resume() else "forwarding was not paused")
    finally:
        store.close()
    return EXIT_OK


def _status(arguments) -> int:
    """Read-only, beside the service; the exit code is the verdict, for any monitoring system."""
    from mailrelay import health
    from mailrelay.config import load_settings
    from mailrelay.store import Store

    settings = load_settings(arguments.config)
    if not settings.state_path.exists():
        print(f"mailrelay: failing: no state file at {settings.state_path}: the relay has never run",
              file=sys.stderr)
        return health.FAILING
    store = Store(settings.state_path, read_only=True)
    try:
        state = health.facts(store)
    finally:
        store.close()
    verdict = health.assess(state, health.Thresholds(settings.outage_seconds, settings.quarantined_per_day))
    if arguments.json:
        print(json.dumps(health.report(state, verdict), ensure_ascii=False, indent=2))
    else:
        print(health.format_report(state, verdict))
    return verdict.code


def _purge(arguments) -> int:
    from mailrelay.app import PolicyHolder, build_relay
    from mailrelay.config import load_settings
    from mailrelay.store import Store

    settings = load_settings(arguments.config)
    store = Store(settings.state_path)  # no lock: SQLite serialises the purge with a running service
    try:
        purged = build_relay(settings, store, PolicyHolder(settings)).purge()
    finally:
        store.close()
    print(f"purged the raw bytes of {purged} mail(s) older than {settings.keep_raw_days} days")
    return EXIT_OK


def _evaluate(arguments) -> int:
    from mailrelay.config import load_settings
    from mailrelay.evaluate import editors_desk, evaluate_folder, format_diff, format_report, report, route_diff
    from mailrelay.pipeline import Identity
    from mailrelay.policy import load_policy, load_policy_files

    settings = load_settings(arguments.config)
    identity = Identity.of(settings)
    policy = load_policy(settings)
    results = evaluate_folder(arguments.folder, policy, identity)
    summary = report(results, editors_desk(policy.rules))
    if arguments.against:
        other = load_policy_files(arguments.against, settings.signals_path, settings.templates_path,
                                  settings.reference_path)
        changed = evaluate_folder(arguments.folder, other, identity)
        summary["diff"] = route_diff(((f.name, f.got["route"], f.rule) for _, f in results), (f for _, f in changed))
    if arguments.json:
        print(json.dumps(summary, ensure_ascii=False, indent=2))
    else:
        print(format_report(summary))
        if arguments.against:
            print("\n" + format_diff(summary["diff"], len(results)))
    return EXIT_OK


def _replay(arguments) -> int:
    """Run changed rules over the stored mails of the last days and list what would route differently."""
    from mailrelay.config import load_settings
    from mailrelay.evaluate import format_diff, route_diff, verdict
    from mailrelay.pipeline import Identity
    from mailrelay.policy import load_policy_files
    from mailrelay.store import Store

    settings = load_settings(arguments.config)
    policy = load_policy_files(arguments.rules or settings.rules_path, arguments.signals or settings.signals_path,
                               settings.templates_path, settings.reference_path)
    identity = Identity.of(settings)
    if not settings.state_path.exists():
        raise SystemExit(f"mailrelay: no state file at {settings.state_path}: nothing has been handled yet")
    store = Store(settings.state_path, read_only=True)  # no lock, so it runs beside the service
    try:
        handled = [(record, raw) for record, raw in store.handled_since(_since(arguments.since))
                   if record.rule and record.rule != "size-limit"]  # decided by rules, on the whole mail
    finally:
        store.close()
    if arguments.since.endswith("d") and int(arguments.since[:-1]) > settings.keep_raw_days:
        print(f"note: raw mails are kept for {settings.keep_raw_days} days; older ones cannot be replayed",
              file=sys.stderr)
    old = [(str(record.id), record.route or "none", record.rule or "") for record, _ in handled]
    new = [verdict(str(record.id), raw, policy, identity) for record, raw in handled]
    records = {str(record.id): record for record, _ in handled}
    diff = route_diff(old, new)
    for change in diff:
        record = records[change["mail"]]
        change.update(message_id=record.message_id, sender=record.from_address, subject=record.subject)
    if arguments.json:
        print(json.dumps({"mails": len(handled), "rules_version": policy.version, "diff": diff},
                         ensure_ascii=False, indent=2))
    else:
        print(format_diff(diff, len(handled)))
    return EXIT_OK


def _since(text: str) -> str:
    """'30d', '12h' or '90m' before now, as the store's ISO timestamps."""
    from datetime import datetime, timedelta, timezone

    units = {"d": "days", "h": "hours", "m": "minutes"}
    if len(text) < 2 or text[-1] not in units or not text[:-1].isdigit():
        raise SystemExit(f"mailrelay: --since takes a number and d, h or m (like 30d), not {text!r}")
    moment = datetime.now(timezone.utc) - timedelta(**{units[text[-1]]: int(text[:-1])})
    return moment.isoformat(timespec="milliseconds")


def _demo(arguments) -> int:
    from mailrelay.demo import run_demo

    print(run_demo(arguments.workdir))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
