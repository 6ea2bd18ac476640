"""How the policy does on labelled mail, and what a changed policy would route differently. Sends nothing."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from mailrelay.i18n import tr
from mailrelay.mailfile import read_file, read_labels
from mailrelay.model import Classification, Evidence, RawMail
from mailrelay.parse import not_a_mail, parse
from mailrelay.pipeline import Identity, judge
from mailrelay.policy import Policy
from mailrelay.rules import Rules

FIELDS = ("kind", "sender", "level", "country", "route")
PERSON_KINDS = ("application", "inquiry")
MACHINE_KINDS = ("auto_reply", "bounce", "bulk", "spam")


@dataclass(frozen=True)
class Verdict:
    """What the policy says of one mail: the fields a label can be compared with, and why."""

    name: str
    got: dict
    rule: str
    classification: Classification | None


def verdict(name: str, data: bytes, policy: Policy, identity: Identity) -> Verdict:
    judged = judge(parse(RawMail(name, data)), policy, identity)
    found = judged.classification
    got = {"route": judged.decision.route}
    if found is not None:
        got.update(kind=str(found.kind), sender=str(found.sender),
                   level=str(found.level) if found.level else None, country=found.country)
    return Verdict(name, got, judged.decision.rule, found)


@dataclass(frozen=True)
class Evaluation:
    """The verdicts on a labelled folder's mails, and the files in it that are no mail (name, why)."""

    results: list[tuple[dict, Verdict]]
    not_mails: list[tuple[str, str]]


def evaluate_folder(folder: Path, policy: Policy, identity: Identity) -> Evaluation:
    """Judge each labelled mail; a file that is no mail is set aside, not classified."""
    results, not_mails = [], []
    for label in read_labels(folder):
        data = read_file(folder / label["file"], "")
        reason = not_a_mail(data)
        if reason:
            not_mails.append((label["file"], reason))
        else:
            results.append((label, verdict(label["file"], data, policy, identity)))
    return Evaluation(results, not_mails)


def _judged(label: dict, field: str) -> bool:
    """Kind and route are judged for every mail; sender and country for a person's mail; the level for a
    public body's (corpus README). A field labelled null is not judged."""
    if field == "level":
        return label.get("kind") in PERSON_KINDS and label.get("sender") == "public_body"
    if label.get(field) is None:
        return False
    return field in ("kind", "route") or label.get("kind") in PERSON_KINDS


def is_machine_label(label: dict) -> bool | None:
    """Whether a person wrote the labelled mail: by its kind, or, where the kind is not judged, by its route
    ('none' is where machine mail goes); None when neither is labelled."""
    if label.get("kind") is not None:
        return label["kind"] in MACHINE_KINDS
    return None if label.get("route") is None else label["route"] == "none"


def editors_desk(rules: Rules) -> str:
    """The desk where the editors read: the review desk, else the default's."""
    return rules.review.desk if rules.review else (rules.default.desk or "")


def report(results: list[tuple[dict, Verdict]], editors_desk: str = "editors",
           not_mails: Iterable[tuple[str, str]] = ()) -> dict:
    """Accuracy per field, the route confusion matrix, person mail archived, machine mail forwarded (to a
    desk, to the editors), each misroute with why, and the files that are no mail (not judged)."""
    accuracy = {}
    for field in FIELDS:
        pairs = [(label[field], found.got.get(field)) for label, found in results if _judged(label, field)]
        right = sum(expected == got for expected, got in pairs)
        accuracy[field] = {"right": right, "judged": len(pairs), "accuracy": right / len(pairs) if pairs else None}
    judged = [(label, found) for label, found in results if label.get("route") is not None]
    confusion = Counter((label["route"], found.got["route"]) for label, found in judged)
    machine = [(label, found) for label, found in results if is_machine_label(label)]
    person = [(label, found) for label, found in results if is_machine_label(label) is False]
    return {
        "mails": len(results),
        "accuracy": accuracy,
        "confusion": {expected: {got: n for (e, got), n in confusion.items() if e == expected}
                      for expected in sorted({e for e, _ in confusion})},
        "person_mails": len(person),
        "person_archived": [label["file"] for label, found in person if found.got["route"] == "none"],
        "machine_mails": len(machine),
        "machine_forwarded": {
            "desk": [label["file"] for label, found in machine if found.got["route"] not in ("none", editors_desk)],
            "editors": [label["file"] for label, found in machine if found.got["route"] == editors_desk],
        },
        "misrouted": [_misroute(label, found) for label, found in judged if label["route"] != found.got["route"]],
        "not_a_mail": [{"file": name, "why": why} for name, why in not_mails],
    }


def _misroute(label: dict, found: Verdict) -> dict:
    wrong = [f for f in FIELDS[:-1] if _judged(label, f) and label.get(f) != found.got.get(f)]
    return {"file": label["file"], "expected": label["route"], "got": found.got["route"], "rule": found.rule,
            "wrong_fields": {f: {"expected": label.get(f), "got": found.got.get(f)} for f in wrong},
            "evidence": [_evidence(e) for e in deciding_evidence(found.classification, wrong)]}


def deciding_evidence(classification: Classification | None, fields: list[str]) -> Iterable[Evidence]:
    """Each wrong field's decision note and its heaviest findings (a wrong route follows from those)."""
    if classification is None:
        return
    for name in fields or ["kind", "sender", "country"]:
        items = sorted(classification.evidence_for(name), key=lambda e: -e.weight)
        yield from [e for e in items if e.where == "classifier"] + [e for e in items if e.where != "classifier"][:4]


def _evidence(item: Evidence) -> dict:
    return {"field": item.field, "value": item.value, "signal": item.signal, "where": item.where,
            "weight": item.weight}


def route_diff(old: Iterable[tuple[str, str, str]], new: Iterable[Verdict]) -> list[dict]:
    """Mails whose route changes: (name, route, rule) before against the new verdicts, in order."""
    before = {name: (route, rule) for name, route, rule in old}
    return [{"mail": found.name, "old_route": before[found.name][0], "old_rule": before[found.name][1],
             "new_route": found.got["route"], "new_rule": found.rule}
            for found in new if before[found.name][0] != found.got["route"]]


def format_report(summary: dict) -> str:
    lines = [tr(f"E-Mails: {summary['mails']}", f"{summary['mails']} mails"), "",
             f"{tr('Feld', 'field'):9}{tr('richtig', 'right'):>9}{tr('bewertet', 'judged'):>10}"
             f"{tr('Anteil', 'accuracy'):>10}"]
    for field, row in summary["accuracy"].items():
        share = f"{100 * row['accuracy']:.1f}%" if row["accuracy"] is not None else "-"
        lines.append(f"{field:9}{row['right']:>9}{row['judged']:>10}{share:>10}")
    lines += ["", *_safety_lines(summary), "", *_confusion_lines(summary["confusion"])]
    lines += ["", tr(f"falsch geleitet: {len(summary['misrouted'])}", f"misrouted: {len(summary['misrouted'])}")]
    for miss in summary["misrouted"]:
        lines.append(tr(f"  {miss['file']}: erwartet {miss['expected']}, erhalten {miss['got']} (Regel {miss['rule']})",
                        f"  {miss['file']}: expected {miss['expected']}, got {miss['got']} (rule {miss['rule']})"))
        lines += [f"      {e['field']}: {e['signal']} [{e['where']}]" for e in miss["evidence"]]
    return "\n".join(lines + _not_mail_lines(summary.get("not_a_mail", [])))


def _not_mail_lines(not_mails: list[dict]) -> list[str]:
    if not not_mails:
        return []
    lines = ["", tr(f"keine E-Mail, nicht bewertet: {len(not_mails)}", f"not a mail, not judged: {len(not_mails)}")]
    return lines + [f"  {item['file']}: {item['why']}" for item in not_mails]


def _safety_lines(summary: dict) -> list[str]:
    """The two figures that matter most: a person's mail archived unseen, a machine's mail passed on."""
    archived, forwarded = summary["person_archived"], summary["machine_forwarded"]
    share = _share(len(archived), summary["person_mails"])
    lines = [tr(f"Mail von Menschen als automatische Mail archiviert: {share}",
                f"person mail archived as machine mail: {share}"), *[f"  {name}" for name in archived]]
    for where in ("desk", "editors"):
        share = _share(len(forwarded[where]), summary["machine_mails"])
        to = tr("an ein Fachreferat", "a desk") if where == "desk" else tr("an die Redaktion", "the editors")
        lines.append(tr(f"automatische Mail weitergeleitet {to}: {share}",
                        f"machine mail forwarded to {to}: {share}"))
        lines += [f"  {name}" for name in forwarded[where]]
    return lines


def _share(count: int, total: int) -> str:
    return tr(f"{count} von {total} ({100 * count / total:.1f}%)" if total else f"{count} von 0",
              f"{count} of {total} ({100 * count / total:.1f}%)" if total else f"{count} of 0")


def _confusion_lines(confusion: dict) -> list[str]:
    routes = sorted(set(confusion) | {got for row in confusion.values() for got in row})
    width = max((len(r) for r in routes), default=4) + 2
    lines = [tr("Leitwege (Zeilen: Sollwert laut labels.jsonl, Spalten: was das Relay tut)",
                "route confusion (rows: label, columns: relay)"),
             " " * width + "".join(f"{r:>{width}}" for r in routes)]
    for expected in routes:
        row = confusion.get(expected, {})
        lines.append(f"{expected:{width}}" + "".join(f"{row.get(got, 0):>{width}}" for got in routes))
    return lines


def format_diff(diff: list[dict], total: int) -> str:
    """The mails that would be routed differently; replay's carry sender, subject and date."""
    lines = [tr(f"{len(diff)} von {total} E-Mails würden anders geleitet",
                f"{len(diff)} of {total} mails would be routed differently")]
    for change in diff:
        lines.append(f"  {_which_mail(change)}")
        lines.append(tr(f"      bisher {change['old_route']} (Regel {change['old_rule']}), "
                        f"neu {change['new_route']} (Regel {change['new_rule']})",
                        f"      was {change['old_route']} (rule {change['old_rule']}), "
                        f"now {change['new_route']} (rule {change['new_rule']})"))
    return "\n".join(lines)


def _which_mail(change: dict) -> str:
    """A stored mail by date, sender and subject; a labelled file by its name."""
    if "sender" not in change:
        return change["mail"]
    sender = change["sender"] or tr("(kein Absender)", "(no sender)")
    subject = change["subject"] or tr("(ohne Betreff)", "(no subject)")
    when = f"{change['first_seen'][:16].replace('T', ' ')} UTC" if change.get("first_seen") else ""
    return f"{when}  {sender}  \"{subject}\"".strip()
