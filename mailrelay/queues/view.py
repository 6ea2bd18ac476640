"""`quarantine show` and `review show`: one mail as an editor needs it to decide (read-only)."""
from __future__ import annotations

from mailrelay.i18n import tr
from mailrelay.model import Action, RawMail
from mailrelay.parse import parse
from mailrelay.queues.core import QueueError, Request, entry, judge_again
from mailrelay.state import MailRecord, Store

_TEXT_LINES = 15  # of the sender's text: enough to see what it is about


def look(store: Store, settings, mail_id: int, queue: str) -> dict:
    """The mail's facts, whether it waits in `queue`, its text's beginning and what the rules in force say."""
    record = store.find_id(mail_id)
    if record is None:
        raise QueueError(tr(f"keine Mail mit der Nummer {mail_id}", f"no mail with the number {mail_id}"))
    found = dict(entry(record), waiting=record.queue == queue and not record.queue_left and not record.request,
                 queue=record.queue, left=record.queue_left,
                 request=Request.loads(record.request).detail() if record.request else None)
    raw = store.raw(record.sha256)
    found["raw_kept"] = raw is not None
    if raw is not None:
        found.update(_reading(record, raw, settings))
    return found


def _reading(record: MailRecord, raw: bytes, settings) -> dict:
    """The beginning of the text and the rules' verdict now; a mail that cannot be read says so."""
    from mailrelay.pipeline import Identity
    from mailrelay.policy import load_policy

    try:
        inbound = parse(RawMail(record.source_key, raw))
        judged = judge_again(record, raw, load_policy(settings), Identity.of(settings))
    except Exception as error:  # a mail the parser cannot read is shown without its text
        return {"text": "", "now": {"error": f"{type(error).__name__}: {error}"}}
    decision = judged.decision
    lines = [line for line in inbound.text.splitlines() if line.strip()][:_TEXT_LINES]
    return {"text": "\n".join(lines),
            "now": {"action": str(decision.action), "desk": decision.desk, "rule": decision.rule,
                    "reason": decision.reason}}


def describe(found: dict) -> str:
    """The text `show` prints."""
    lines = [tr(f"Mail {found['id']}", f"mail {found['id']}") + _where(found)]
    facts = ((tr("Absender", "sender"), found["sender"]), (tr("Betreff", "subject"), found["subject"]),
             ("Message-ID", found["message_id"]), (tr("eingegangen", "arrived"), _time(found["date"])),
             (tr("Grund", "reason"), found["reason"]), (tr("Regel", "rule"), found["rule"]),
             (tr("erkannt", "classified"), _classified(found)), (tr("jetzt", "now"), _now(found)))
    lines += [f"  {label + ':':<12} {value}" for label, value in facts if value]
    if found.get("text"):
        lines += [tr("  Text (Anfang):", "  text (beginning):")] + [f"    {line}" for line in found["text"].splitlines()]
    return "\n".join(lines)


def _where(found: dict) -> str:
    request = found.get("request")
    if request:
        return tr(f": {request['by']} hat um {'Verwerfen' if request['action'] == 'drop' else 'Freigabe'} gebeten;"
                  " der nächste Abruf führt es aus",
                  f": {request['by']} asked to {request['action']} it; the next poll carries it out")
    if found["waiting"]:
        return tr(f" (wartet seit {_time(found['since'])})", f" (waiting since {_time(found['since'])})")
    if found["left"]:
        return tr(f" (am {_time(found['left'])} freigegeben oder verworfen)",
                  f" (released or dropped at {_time(found['left'])})")
    return tr(f" (nicht in dieser Liste; Zustand {found['state']})", f" (not in this queue; state {found['state']})")


def _classified(found: dict) -> str:
    if not found["kind"]:
        return ""
    confidence = f", {tr('Sicherheit', 'confidence')} {found['confidence']:.2f}" if found["confidence"] is not None else ""
    return f"{found['kind']}{confidence}"


def _now(found: dict) -> str:
    """What the rules in force would do with the mail now, and so what `release` without --to does."""
    if not found["raw_kept"]:
        return tr("Rohdaten gelöscht: nur von Hand weiterzuleiten", "raw bytes purged: forward it by hand")
    now = found.get("now") or {}
    if "error" in now:
        return tr(f"nicht lesbar: {now['error']}", f"unreadable: {now['error']}")
    if now["action"] == Action.FORWARD:
        return tr(f"die geltenden Regeln leiten sie an {now['desk']} (Regel {now['rule']})",
                  f"the rules in force send it to {now['desk']} (rule {now['rule']})")
    de, en = ("ignorieren", "ignore") if now["action"] == Action.IGNORE else ("zurückhalten", "hold back")
    return tr(f"die geltenden Regeln würden sie {de} (Regel {now['rule']}); freigeben mit --to REFERAT",
              f"the rules in force would {en} it (rule {now['rule']}); release it with --to DESK")


def _time(stamp: str | None) -> str:
    return (stamp or "")[:16].replace("T", " ")
