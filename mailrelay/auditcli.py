"""`mailrelay audit ...`: verify, list, show and export the audit trail (read-only, beside the service)."""
from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from mailrelay.timespec import since_argument

if TYPE_CHECKING:
    from mailrelay.state.trails import Trail

EXIT_OK, EXIT_FAILED = 0, 1  # EXIT_FAILED: a broken chain, a mail not found, or no readable state file
# The states a mail passes through (store.py and runner.py write them); a typo is a usage error.
STATES = ("received", "decided", "sending", "retry", "forwarded", "ignored", "quarantined")
_SINCE_HELP = "30d, 12h, 90m, 1w, or a date like 2026-11-11 (UTC)"


def add_audit_commands(parser: argparse.ArgumentParser) -> None:
    """Add the audit subcommands to the `audit` parser; each runs its work on a read-only trail."""
    commands = parser.add_subparsers(dest="audit_command", required=True, metavar="COMMAND")
    verify = commands.add_parser("verify", help="walk the hash chain; name the first record altered or removed")
    verify.add_argument("--json", action="store_true", help="one JSON object instead of text")
    verify.set_defaults(handler=_on_trail, work=_verify)
    listing = commands.add_parser("list", help="one line per mail: first seen, state, kind, desk, sender, subject")
    listing.add_argument("--since", type=since_argument, help=_SINCE_HELP)
    listing.add_argument("--sender", help="part of the sender's address, in any case")
    listing.add_argument("--desk", help="the desk it was routed to ('none': not forwarded)")
    listing.add_argument("--kind", type=_kind, help="application, inquiry, auto_reply, bounce, bulk or spam")
    listing.add_argument("--state", type=_state, help=", ".join(STATES))
    listing.add_argument("--review", action="store_true",
                         help="only mails sent to the editors for review (waiting or worked; see `review list`)")
    listing.add_argument("--json", action="store_true", help="one JSON object instead of text")
    listing.set_defaults(handler=_on_trail, work=_list)
    show = commands.add_parser("show", help="the whole story of one mail, from arrival to archive")
    show.add_argument("message_id", metavar="MESSAGE-ID",
                      help="its Message-ID (angle brackets optional), or its mail number or sha256 prefix")
    show.add_argument("--json", action="store_true", help="one JSON object instead of text")
    show.set_defaults(handler=_on_trail, work=_show)
    export = commands.add_parser("export", help="every audit record with its mail, for records management")
    export.add_argument("--format", required=True, choices=("csv", "jsonl"))
    export.add_argument("--since", type=since_argument, help=_SINCE_HELP)
    export.add_argument("--output", metavar="FILE", help="write here instead of to stdout")
    export.set_defaults(handler=_on_trail, work=_export)


def _on_trail(arguments: argparse.Namespace) -> int:
    """Open the store the config names, read-only and without the lock, and run the command's work."""
    import sys

    from mailrelay.audit import TrailError, open_trail_for
    from mailrelay.config import load_settings

    try:
        with open_trail_for(load_settings(arguments.config)) as trail:
            return arguments.work(arguments, trail)
    except TrailError as error:
        print(f"mailrelay audit: {error}", file=sys.stderr)
        return EXIT_FAILED


def _verify(arguments: argparse.Namespace, trail: Trail) -> int:
    from mailrelay.audit import verify

    verdict = verify(trail)
    _print(arguments, verdict.as_dict(), verdict.describe())
    return EXIT_OK if verdict.intact else EXIT_FAILED


def _list(arguments: argparse.Namespace, trail: Trail) -> int:
    from mailrelay.audit import MailFilter, format_list, list_mails

    mails = list_mails(trail, MailFilter(arguments.since, arguments.sender, arguments.desk, arguments.kind,
                                         arguments.state, arguments.review))
    _print(arguments, {"count": len(mails), "mails": mails}, format_list(mails))
    return EXIT_OK


def _show(arguments: argparse.Namespace, trail: Trail) -> int:
    import sys

    from mailrelay.audit import find_mails, format_story, story

    stories = [story(trail, mail) for mail in find_mails(trail, arguments.message_id)]
    if not stories:
        print(f"mailrelay audit: no mail with Message-ID, number or sha256 {arguments.message_id!r}", file=sys.stderr)
        return EXIT_FAILED
    _print(arguments, {"query": arguments.message_id, "mails": stories},
           "\n\n".join(format_story(told) for told in stories))
    return EXIT_OK


def _export(arguments: argparse.Namespace, trail: Trail) -> int:
    import sys

    from mailrelay.audit import export_rows, write_export

    rows = export_rows(trail, arguments.since)
    if not arguments.output:
        try:
            write_export(rows, arguments.format, sys.stdout)
            sys.stdout.flush()
        except BrokenPipeError:  # `| head`: the reader has all it wants; keep the exit quiet
            _silence_stdout()
            return EXIT_FAILED
        return EXIT_OK
    try:
        with open(arguments.output, "w", encoding="utf-8", newline="") as out:
            count = write_export(rows, arguments.format, out)
    except OSError as error:
        print(f"mailrelay audit: cannot write {arguments.output}: {error}", file=sys.stderr)
        return EXIT_FAILED
    print(f"{count} records written to {arguments.output}")
    return EXIT_OK


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush does not fail on the closed pipe."""
    import os
    import sys

    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _print(arguments: argparse.Namespace, data: dict, text: str) -> None:
    import json

    print(json.dumps(data, ensure_ascii=False, indent=2) if arguments.json else text)


def _kind(text: str) -> str:
    """argparse type for --kind: one of the kinds the classifier gives."""
    from mailrelay.model import Kind

    try:
        return str(Kind(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a kind: {', '.join(Kind)}") from None


def _state(text: str) -> str:
    """argparse type for --state: one of the states the relay records."""
    if text not in STATES:
        raise argparse.ArgumentTypeError(f"{text!r} is not a state: {', '.join(STATES)}")
    return text
