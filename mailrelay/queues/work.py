"""The editors' releases and drops carried out in a poll, with the poll's mailbox and SMTP connections.

A release re-decides the mail from its kept bytes (with the rules in force, or for the named desk), sends
it as any forward (recorded before and after, the circuit breaker applies) and moves its copy from the
quarantine mailbox to the processed one; a drop moves the copy to the ignored mailbox. Nothing is deleted."""
from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
from typing import Callable

from mailrelay.model import Action, Decision, Inbound, Processed, RawMail
from mailrelay.parse import parse
from mailrelay.pipeline import Identity, decide
from mailrelay.policy import Policy
from mailrelay.queues.core import RELEASE_RULE, QueueError, Request, is_review, judge_again, kept_bytes
from mailrelay.render import render
from mailrelay.sources.base import Archived, Inbox, MailError, SourceError
from mailrelay.state import MailRecord, Store
from mailrelay.transports.base import Status

Audit = Callable[..., None]  # the runner's: (mail_id, event, detail, severity="info", **columns)
Breaker = Callable[[Inbound], "tuple[dict, str] | None"]


class Refused(Exception):
    """The request cannot be carried out; the mail stays in its queue and the editor can ask again."""


class QueueWork:
    """One poll's share of the editors' requests."""

    def __init__(self, store: Store, policy: Policy, identity: Identity, audit: Audit, breaker: Breaker,
                 decided: Callable[[Processed], tuple[dict, dict]]):
        self.store = store
        self.policy = policy
        self.identity = identity
        self.audit = audit
        self.breaker = breaker
        self.decided = decided  # the runner's "mail.decided" detail and columns for a decision

    def carry_out(self, inbox: Inbox, outbox) -> list[dict]:
        """Every pending request, oldest first; what became of each, for the poll's report."""
        outcomes = []
        for record in self.store.requested():
            request = Request.loads(record.request)
            try:
                outcomes.append(self._one(record, request, inbox, outbox))
            except SourceError:  # the connection is gone: the requests wait for the next poll
                raise
            except Refused as refusal:
                outcomes.append(self._refuse(record, request, str(refusal)))
            except Exception as error:  # a bug or a broken template costs this request, not the poll
                outcomes.append(self._refuse(record, request, f"{type(error).__name__}: {error}"))
        return outcomes

    def _one(self, record: MailRecord, request: Request, inbox: Inbox, outbox) -> dict:
        if request.action == "drop":
            return self._drop(record, request, inbox)
        if request.action == "move":  # the forward went out; the copy is still to be moved
            copy = inbox.find_copy("quarantine", request.copy, record.message_id, record.sha256)
            return self._move(record, request, copy, inbox)
        return self._release(record, request, inbox, outbox)

    def _drop(self, record: MailRecord, request: Request, inbox: Inbox) -> dict:
        copy = inbox.find_copy("quarantine", record.queue_key, record.message_id, record.sha256)
        self.store.sync()
        archived = _moved(inbox, copy, "ignored", record)
        self.audit(record.id, "queue.dropped", dict(request.detail(), mailbox=archived.mailbox if archived else None),
                   state="ignored", queue_left=_now(), request=None, queue_key=None,
                   archived_to=archived.mailbox if archived else record.archived_to)
        return _outcome(record, "dropped", record.route or "none")

    def _release(self, record: MailRecord, request: Request, inbox: Inbox, outbox) -> dict:
        try:
            raw = kept_bytes(self.store, record)
        except QueueError as error:
            raise Refused(str(error)) from None
        processed = self._redecide(record, raw, request.desk)
        tripped = self.breaker(processed.inbound)
        if tripped:
            raise Refused(tripped[1])
        copy = None
        if request.queue == "quarantine":
            copy = inbox.find_copy("quarantine", record.queue_key, record.message_id, record.sha256)
            if copy is None:
                raise Refused("its copy is no longer in the quarantine mailbox (moved by hand?)")
        detail, columns = self.decided(processed)
        self.audit(record.id, "mail.decided", dict(detail, released_by=request.by))
        # Recorded with the forward: what is left once it went out, so a crash after it never sends it again.
        left = dataclasses.replace(request, action="move", copy=copy) if copy else None
        delivered = self._send(record, request, processed, outbox, dict(columns, request=left and left.dumps()))
        if delivered != "forwarded":
            return _outcome(record, delivered, processed.decision.route)
        return self._move(self.store.get(record.id), left or request, copy, inbox)

    def _redecide(self, record: MailRecord, raw: bytes, desk: str | None) -> Processed:
        """The rules in force, or the named desk; no acknowledgement: a person has had the mail in hand."""
        if desk is None:
            processed = decide(parse(RawMail(record.source_key, raw)), self.policy, self.identity)
            if processed.forward is None:
                raise Refused(f"the rules in force would not forward it now ({processed.decision.action},"
                              f" rule {processed.decision.rule}); release it with --to DESK")
            return dataclasses.replace(processed, acknowledgement=None, ack_note="")
        judged = judge_again(record, raw, self.policy, self.identity)
        if desk not in self.policy.rules.desks or judged.classification is None:
            raise Refused(f"no desk {desk!r} in the rules in force" if judged.classification else
                          f"it is the relay's own mail: {judged.decision.reason}")
        decision = Decision(Action.FORWARD, RELEASE_RULE, desk, rules_version=self.policy.version)
        forward = render(judged.inbound, judged.classification, decision, self.policy.rules.desks[desk],
                         self.policy.templates, self.identity.from_address, self.identity.relay_id)
        return Processed(judged.inbound, judged.classification, decision, forward)

    def _send(self, record: MailRecord, request: Request, processed: Processed, outbox, columns: dict) -> str:
        """Recorded before and after, as any forward (`columns` go with the record after); a temporary
        failure keeps the request for the next poll."""
        forward = processed.forward
        self.audit(record.id, "mail.sending", {"desk": forward.desk, "message_id": forward.message_id,
                                               "released_by": request.by}, forward_message_id=forward.message_id)
        self.store.sync()  # a power loss after the server accepted must not forget it was sent
        delivery = outbox.send(forward)
        detail = {"desk": forward.desk, "recipients": list(forward.recipients), "reply": delivery.reply,
                  "released_by": request.by}
        if delivery.status is Status.TEMPORARY:
            self.audit(record.id, "mail.deferred", detail, severity="warning")
            return "deferred"
        if delivery.status is not Status.ACCEPTED:
            self.audit(record.id, "mail.refused", detail, severity="warning")
            raise Refused(f"the SMTP server refused it: {delivery.reply}")
        now = _now()
        review = is_review(processed.decision, self.policy.rules)
        queue = dict(queue="review", queued_at=now, queue_left=None) if review else dict(queue_left=now)
        self.audit(record.id, "mail.forwarded", dict(detail, refused=list(delivery.refused)),
                   **{**columns, "state": "forwarded"}, forwarded_at=now, **queue)
        return "forwarded"

    def _move(self, record: MailRecord, request: Request, copy: str | None, inbox: Inbox) -> dict:
        """The copy leaves the quarantine mailbox for the processed one; if the server refuses, the request
        stays as a move only (recorded with the forward), tried again by the next poll."""
        try:
            self.store.sync()
            archived = _moved(inbox, copy, "processed", record)
        except MailError as error:
            self.audit(record.id, "mail.archive_failed", {"error": str(error)}, severity="warning")
            return _outcome(record, "archive_failed", record.route or "none")
        columns = dict(archived_to=archived.mailbox, queue_key=None) if archived else {}
        self.audit(record.id, "queue.released", dict(request.detail(), action="release",
                                                     mailbox=archived.mailbox if archived else None),
                   request=None, **columns)
        return _outcome(record, "released", record.route or "none")

    def _refuse(self, record: MailRecord, request: Request, why: str) -> dict:
        """The mail stays where it waits; the audit trail (and `show`) says why."""
        self.audit(record.id, f"queue.{request.action}_refused", dict(request.detail(), error=why),
                   severity="warning", request=None)
        return dict(_outcome(record, "refused", record.route or "none"), error=why)


def _moved(inbox: Inbox, copy: str | None, target: str, record: MailRecord) -> Archived | None:
    """Move the found copy, or, for a mail whose copy is no longer in a queue's mailbox, nothing."""
    if copy is None:
        return None
    return inbox.move_copy(copy, target)


def _outcome(record: MailRecord, outcome: str, route: str) -> dict:
    return {"key": record.queue_key or record.source_key, "outcome": outcome, "route": route,
            "subject": record.subject, "quarantined": False}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")
