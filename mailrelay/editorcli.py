"""The editors' commands: explain, evaluate and replay (argparse here; the work is imported when it runs)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

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
    replay.add_argument("--since", default="30d", help="how far back: 30d, 12h, 90m (default 30d)")
    replay.add_argument("--rules", type=Path, help="the changed routing file (default: the one in force)")
    replay.add_argument("--signals", type=Path, help="the changed signals file (default: the one in force)")
    replay.add_argument("--json", action="store_true")
    replay.set_defaults(handler=_replay)


def _explain(arguments) -> int:
    from mailrelay.explain import explain_file

    text = explain_file(arguments.config, arguments.mail, as_json=arguments.json)
    print(json.dumps(text, ensure_ascii=False, indent=2) if arguments.json else text)
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
