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


_QUIET = ("explain", "check", "demo")  # their output is for people; events go to stderr, warnings only


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
    demo = commands.add_parser("demo", help="run the relay over a bundled sample inbox, no servers needed")
    demo.add_argument("--workdir", type=Path, default=Path("mailrelay-demo"))
    demo.set_defaults(handler=_demo)
    return parser


def _once(arguments) -> int:
    from mailrelay.sources.base import SourceError

    settings, store, relay = _open(arguments.config)
    try:
        relay.poll()
    except SourceError as error:
        print(f"mailrelay: the poll could not run: {error}", file=sys.stderr)
        return EXIT_POLL_FAILED
    finally:
        store.close()
    return EXIT_OK


def _run(arguments) -> int:
    from mailrelay.daemon import Daemon

    settings, store, relay = _open(arguments.config)
    try:
        Daemon(relay, relay.policy, settings.poll_seconds).run()
    finally:
        store.close()
    return EXIT_OK


def _open(config: Path):
    """Settings, the locked store and the relay; refuses a second instance on the same state."""
    from mailrelay.app import PolicyHolder, build_relay
    from mailrelay.config import load_settings
    from mailrelay.store import AlreadyRunning, Store

    settings = load_settings(config)
    policy = PolicyHolder(settings)
    store = Store(settings.state_path)
    try:
        store.lock()
    except AlreadyRunning:
        store.close()
        raise
    return settings, store, build_relay(settings, store, policy)


def _check(arguments) -> int:
    """Every problem of the main file and of the editors' files, in one run."""
    from mailrelay.config import editor_paths, load_settings
    from mailrelay.policy import load_policy_files
    from mailrelay.tomlcheck import ConfigError

    problems = []
    try:
        load_settings(arguments.config)
    except ConfigError as error:
        problems += error.problems
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


def _demo(arguments) -> int:
    from mailrelay.demo import run_demo

    print(run_demo(arguments.workdir))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
