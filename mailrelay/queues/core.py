"""The editors' two queues: what waits in them, and releases and drops recorded beside the service.

An editor's request is a state change and an audit record (who, why, to which desk), checked when it is
made; the next poll carries it out (see queuework.py), because only the runner talks to the servers."""
from __future__ import annotations

import dataclasses
import getpass
import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone

from mailrelay.i18n import tr
from mailrelay.model import Action, Decision, Processed, RawMail
from mailrelay.parse import parse
from mailrelay.pipeline import Identity, judge
from mailrelay.policy import Policy
from mailrelay.rules import Rules
from mailrelay.state import MailRecord, Store

REVIEW_RULE = "low-confidence-review"
RELEASE_RULE = "editor-release"  # the rule a release to a named desk is recorded under
# A reason that hands the mail to the editors for a decision, as the shipped rules word it.
_REVIEW_REASON = re.compile(r"\s*(zur\s+pr(ü|ue)fung|for\s+review)\b", re.IGNORECASE)
_ACTION_WORDS = {Action.IGNORE: ("ignorieren", "ignore"), Action.QUARANTINE: ("wieder in Quarantäne legen",
                                                                              "quarantine again")}
DONE = "erledigt"  # a review mail dropped without a reason: the editors dealt with it


class QueueError(Exception):
    """A request the editor has to change; the message is one line in their language."""


@dataclass(frozen=True)
class Request:
    """An editor's release or drop of one mail, kept in the mail's `request` until a poll carries it out.
    `move` is what is left of a release whose forward went out but whose copy could not be moved yet."""

    action: str  # release | drop | move
    queue: str
    by: str
    at: str
    desk: str | None = None  # release: the desk named with --to; None: the rules in force decide
    reason: str = ""
    copy: str | None = None  # move: the copy's key in the quarantine mailbox

    def dumps(self) -> str:
        return json.dumps(dataclasses.asdict(self), ensure_ascii=False, sort_keys=True)

    @classmethod
    def loads(cls, text: str) -> "Request":
        fields = json.loads(text)
        return cls(**{name: fields[name] for name in cls.__dataclass_fields__ if name in fields})

    def detail(self) -> dict:
        """The request as an audit record's detail."""
        return {key: value for key, value in dataclasses.asdict(self).items() if value not in (None, "")}


def is_review(decision: Decision, rules: Rules) -> bool:
    """Whether a forward hands the mail to the editors to decide: the low-confidence rule, or a forward to
    the review desk by the default rule (no rule matched) or with a reason that says "Zur Prüfung".
    A forward to that desk for another reason (an inquiry) is the editors' own mail, not a review."""
    if decision.action is not Action.FORWARD:
        return False
    if decision.rule == REVIEW_RULE:
        return True
    desk = rules.review.desk if rules.review else rules.default.desk
    return decision.desk == desk and (decision.rule == rules.default.name
                                      or bool(_REVIEW_REASON.match(decision.reason or "")))


def default_editor() -> str:
    """Who asks, when --by does not say: the Unix user."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container's)
        return "unknown"


def entry(record: MailRecord) -> dict:
    """One waiting mail as `list --json` gives it; `id` is what show, release and drop take."""
    return {"id": record.id, "message_id": record.message_id, "sender": record.from_address,
            "subject": record.subject, "reason": record.reason or "", "since": record.queued_at,
            "date": record.arrived or record.first_seen, "rule": record.rule, "kind": record.kind,
            "confidence": record.confidence, "desk": record.route, "state": record.state}


def waiting_mail(store: Store, queue: str, mail_id: int) -> MailRecord:
    """The mail `mail_id` if it waits in `queue` with no request pending; QueueError says why not."""
    record = store.find_id(mail_id)
    if record is None:
        raise QueueError(tr(f"keine Mail mit der Nummer {mail_id}", f"no mail with the number {mail_id}"))
    if record.request:
        asked = Request.loads(record.request)
        raise QueueError(tr(f"Mail {mail_id}: {asked.by} hat am {asked.at[:16]} schon um "
                            f"{'Freigabe' if asked.action != 'drop' else 'Verwerfen'} gebeten; "
                            "der nächste Abruf führt es aus",
                            f"mail {mail_id}: {asked.by} already asked to {asked.action} it at {asked.at[:16]};"
                            " the next poll carries it out"))
    if record.queue != queue or record.queue_left:
        raise QueueError(_not_in(record, queue))
    return record


def _not_in(record: MailRecord, queue: str) -> str:
    where = {"quarantine": ("in der Quarantäne", "in quarantine"), "review": ("zur Prüfung", "waiting for review")}
    de, en = where[queue]
    if record.queue_left:
        return tr(f"Mail {record.id} ist nicht mehr {de}: sie wurde am {record.queue_left[:16]} freigegeben oder "
                  "verworfen", f"mail {record.id} is no longer {en}: it was released or dropped at "
                  f"{record.queue_left[:16]}")
    other = {"quarantine": "mailrelay quarantine list", "review": "mailrelay review list"}
    hint = f"; {other[record.queue]}" if record.queue in other else ""
    return tr(f"Mail {record.id} ist nicht {de} (Zustand {record.state}){hint}",
              f"mail {record.id} is not {en} (state {record.state}){hint}")


def request_release(store: Store, policy: Policy, identity: Identity, queue: str, mail_id: int,
                    desk: str | None, by: str) -> tuple[MailRecord, Decision]:
    """Record that the next poll is to forward the mail: to `desk`, or as the rules in force decide. Refused
    when the desk is unknown, the bytes are gone, or the rules would not forward it (then --to is the way)."""
    record = waiting_mail(store, queue, mail_id)
    if desk is not None and desk not in policy.rules.desks:
        raise QueueError(tr(f"kein Referat {desk!r}; bekannt: {', '.join(sorted(policy.rules.desks))}",
                            f"no desk {desk!r}; known: {', '.join(sorted(policy.rules.desks))}"))
    if queue == "review" and desk is None:
        raise QueueError(tr("zur Prüfung gesandte Mails gehen mit --to REFERAT weiter",
                            "mails sent for review are released with --to DESK"))
    raw = kept_bytes(store, record)
    decision = Decision(Action.FORWARD, RELEASE_RULE, desk, rules_version=policy.version) if desk else \
        judge_again(record, raw, policy, identity).decision
    if decision.action is not Action.FORWARD:
        de, en = _ACTION_WORDS[decision.action]
        raise QueueError(tr(f"Mail {mail_id}: die geltenden Regeln würden sie {de} (Regel {decision.rule}"
                            f"{': ' + decision.reason if decision.reason else ''}); mit --to REFERAT geht sie "
                            "an ein Referat",
                            f"mail {mail_id}: the rules in force would {en} it (rule {decision.rule}"
                            f"{': ' + decision.reason if decision.reason else ''}); use --to DESK to send it to a desk"))
    request = Request("release", queue, by, _now(), desk=desk)
    store.update(record.id, "queue.release_requested", dict(request.detail(), would=decision.desk,
                                                            rule=decision.rule), request=request.dumps())
    return record, decision


def request_drop(store: Store, queue: str, mail_id: int, reason: str, by: str) -> MailRecord:
    """Quarantine: record that the next poll is to move the mail to the ignored mailbox. Review: the
    forward is with the editors already, so it leaves the queue now."""
    record = waiting_mail(store, queue, mail_id)
    if not reason.strip():
        raise QueueError(tr("--reason sagt, warum die Mail verworfen wird", "--reason says why the mail is dropped"))
    request = Request("drop", queue, by, _now(), reason=reason.strip())
    if queue == "review":
        store.update(record.id, "queue.dropped", request.detail(), queue_left=request.at)
    else:
        store.update(record.id, "queue.drop_requested", request.detail(), request=request.dumps())
    return record


def kept_bytes(store: Store, record: MailRecord) -> bytes:
    """The mail's raw bytes as the store keeps them; QueueError when they cannot be released from there."""
    if record.rule == "size-limit":
        raise QueueError(tr(f"Mail {record.id} war zu groß: nur ihr Kopf wurde abgerufen; bitte von Hand aus dem "
                            "Quarantäne-Postfach weiterleiten oder verwerfen",
                            f"mail {record.id} was too large: only its header was fetched; forward it by hand from"
                            " the quarantine mailbox, or drop it"))
    raw = store.raw(record.sha256)
    if raw is None:
        raise QueueError(tr(f"die Rohdaten von Mail {record.id} sind schon gelöscht (keep_raw_days); bitte von Hand "
                            "aus dem Quarantäne-Postfach weiterleiten oder verwerfen",
                            f"the raw bytes of mail {record.id} were purged (keep_raw_days); forward it by hand from"
                            " the quarantine mailbox, or drop it"))
    return raw


def judge_again(record: MailRecord, raw: bytes, policy: Policy, identity: Identity) -> Processed:
    """What the rules in force decide on the mail's kept bytes (pure: nothing rendered, nothing sent)."""
    return judge(parse(RawMail(record.source_key, raw)), policy, identity)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")
