"""The editors' commands: explain, evaluate and replay (argparse here; the work is imported when it runs).

Exit codes: 0 done; 2 a usage mistake (a file or folder that is not there or not readable, a broken line
of labels.jsonl, a --since not understood, replay before the relay has handled anything); 3 `explain` was
given a file that is no mail. A configuration that is not usable ends with 2 in cli.main."""
from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

from mailrelay.i18n import tr
from mailrelay.timespec import since_argument

EXIT_OK = 0


def add_editor_commands(commands) -> None:
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
    replay.add_argument("--since", default="30d", type=since_argument,
                        help="how far back: 30d, 12h, 90m, 1w, or a date like 2026-11-11 (UTC); default 30d")
    replay.add_argument("--rules", type=Path, help="the changed routing file (default: the one in force)")
    replay.add_argument("--signals", type=Path, help="the changed signals file (default: the one in force)")
    replay.add_argument("--json", action="store_true")
    replay.set_defaults(handler=_replay)


def _one_line_errors(handler):
    """An expected mistake in what the person named ends as one line on stderr and its exit code."""
    @functools.wraps(handler)
    def run(arguments) -> int:
        from mailrelay.mailfile import InputError

        try:
            return handler(arguments)
        except InputError as error:
            print(f"mailrelay: {error}", file=sys.stderr)
            return error.exit_code
    return run


@_one_line_errors
def _explain(arguments) -> int:
    from mailrelay.explain import explain_file

    text = explain_file(arguments.config, arguments.mail, as_json=arguments.json)
    print(json.dumps(text, ensure_ascii=False, indent=2) if arguments.json else text)
    return EXIT_OK


@_one_line_errors
def _evaluate(arguments) -> int:
    from mailrelay.config import load_settings
    from mailrelay.evaluate import editors_desk, evaluate_folder, format_diff, format_report, report, route_diff
    from mailrelay.pipeline import Identity
    from mailrelay.policy import load_policy, load_policy_files

    settings = load_settings(arguments.config)
    identity = Identity.of(settings)
    policy = load_policy(settings)
    evaluation = evaluate_folder(arguments.folder, policy, identity)
    summary = report(evaluation.results, editors_desk(policy.rules), evaluation.not_mails)
    if arguments.against:
        other = load_policy_files(arguments.against, settings.signals_path, settings.templates_path,
                                  settings.reference_path)
        changed = evaluate_folder(arguments.folder, other, identity).results
        summary["diff"] = route_diff(((f.name, f.got["route"], f.rule) for _, f in evaluation.results),
                                     (f for _, f in changed))
    if arguments.json:
        print(json.dumps(summary, ensure_ascii=False, indent=2))
    else:
        print(format_report(summary))
        if arguments.against:
            print("\n" + format_diff(summary["diff"], len(evaluation.results)))
    return EXIT_OK


@_one_line_errors
def _replay(arguments) -> int:
    """Run changed rules over the stored mails of the last days and list what would route differently."""
    from mailrelay.config import load_settings
    from mailrelay.evaluate import format_diff
    from mailrelay.policy import load_policy_files
    from mailrelay.timespec import age_in_days

    settings = load_settings(arguments.config)
    policy = load_policy_files(arguments.rules or settings.rules_path, arguments.signals or settings.signals_path,
                               settings.templates_path, settings.reference_path)
    total, diff = replay(settings, policy, arguments.since)
    if age_in_days(arguments.since) > settings.keep_raw_days:
        print(tr(f"Hinweis: Rohmails werden {settings.keep_raw_days} Tage aufbewahrt; ältere lassen sich nicht "
                 "erneut prüfen", f"note: raw mails are kept for {settings.keep_raw_days} days; older ones cannot "
                 "be replayed"), file=sys.stderr)
    if arguments.json:
        print(json.dumps({"mails": total, "rules_version": policy.version, "diff": diff},
                         ensure_ascii=False, indent=2))
    else:
        print(format_diff(diff, total))
    return EXIT_OK


def replay(settings, policy, since: str) -> tuple[int, list[dict]]:
    """How many stored mails first seen since `since` the rules decided, and those `policy` would route
    differently (route_diff's rows with the mail's message_id, sender, subject and first_seen)."""
    from mailrelay.evaluate import route_diff, verdict
    from mailrelay.pipeline import Identity

    handled = _handled(settings, since)
    identity = Identity.of(settings)
    old = [(str(record.id), record.route or "none", record.rule or "") for record, _ in handled]
    new = [verdict(str(record.id), raw, policy, identity) for record, raw in handled]
    records = {str(record.id): record for record, _ in handled}
    diff = route_diff(old, new)
    for change in diff:
        record = records[change["mail"]]
        change.update(message_id=record.message_id, sender=record.from_address, subject=record.subject,
                      first_seen=record.first_seen)
    return len(handled), diff


def _handled(settings, since: str) -> list:
    """The stored mails first seen since `since` that rules decided, with their raw bytes."""
    from mailrelay.mailfile import InputError
    from mailrelay.state import open_state

    if settings.state_url is None and not settings.state_path.exists():
        raise InputError(tr(f"keine Zustandsdatei unter {settings.state_path}: das Relay hat noch keine Mail "
                            "bearbeitet, oder --config nennt nicht die Konfiguration des Dienstes",
                            f"no state file at {settings.state_path}: the relay has handled no mail yet, or "
                            "--config does not name the service's configuration"))
    store = open_state(settings, read_only=True)  # no lock, so it runs beside the service
    try:
        return [(record, raw) for record, raw in store.handled_since(since)
                if record.rule and record.rule != "size-limit"]  # decided by rules, on the whole mail
    finally:
        store.close()
