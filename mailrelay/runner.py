"""One poll: the only place that orders side effects (fetch, decide, deliver, record, archive)."""
from __future__ import annotations

import hashlib
import re
import traceback
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable

from mailrelay.logs import get_logger
from mailrelay.model import Action, Decision, Forward, Inbound, Processed, RawMail
from mailrelay.parse import parse
from mailrelay.pipeline import Identity, decide
from mailrelay import health, outage
from mailrelay.decider import Ahead
from mailrelay.brake import LAST_FULL_POLL, FloodBrake
from mailrelay.queues.core import is_review
from mailrelay.queues.work import QueueWork
from mailrelay.render import render_alert
from mailrelay.policy import Policy
from mailrelay.sources.base import Archived, Inbox, MailError, MailSource, SourceError, mailbox_of
from mailrelay.state import FINAL_STATES, LeaseLost, MailRecord, PendingAck, Store, StoreUnavailable
from mailrelay.transports.base import Delivery, Status

_ARCHIVE_TARGET = {"forwarded": "processed", "ignored": "ignored", "quarantined": "quarantine"}
_ANGLE = re.compile(r"<[^<>]*>")
_STATE_OF_ACTION = {Action.IGNORE: "ignored", Action.QUARANTINE: "quarantined"}


@dataclass(frozen=True)
class Limits:
    """The relay's safety settings."""

    keep_raw_days: int = 30
    retry_seconds: tuple[float, float] = (60, 3600)
    forwards_per_sender_per_hour: int = 10
    forwards_per_thread_per_hour: int = 10
    max_tries: int = 3  # tries of one mail that end the process before it gives up on the mail
    max_forwards_per_poll: int = 200  # more in one poll looks like lost state, not mail: pause and alert
    # Mail that arrived up to this long before the last full poll began still counts as a backlog (brake.py):
    # the IMAP server's clock against ours; lost state shows in mail older than that, so it still brakes.
    arrival_margin_seconds: float = 300


@dataclass
class PollReport:
    """What one poll did, by outcome, and per mail for the demo's table."""

    counts: Counter = field(default_factory=Counter)
    mails: list[dict] = field(default_factory=list)
    complete: bool = False  # every new mail was read: not paused, braked or stopped half-way


class Relay:
    def __init__(self, store: Store, source: MailSource, transport, policy: Callable[[], Policy],
                 identity: Identity, limits: Limits = Limits(), thresholds: health.Thresholds = health.Thresholds(),
                 operators: tuple[str, ...] = ()):
        self.store = store
        self.source = source
        self.transport = transport
        self.policy = policy  # a callable, so a reload between polls takes effect at the next mail
        self.identity = identity
        self.log = get_logger()
        self.limits = limits
        self.stop_requested = False  # set when the service stops; the mail in hand is finished first
        self.progress: Callable[[], None] = lambda: None  # called after each mail: the service's watchdog
        self.thresholds = thresholds
        self.operators = operators
        self._to_archive: list[tuple[int, str, str]] = []  # (mail id, key, state): recorded, not yet moved

    def poll(self) -> PollReport:
        """Handle every new mail once; SourceError means this poll could not run at all. Either way the
        outcome is kept for `status`, and the operators hear of an outage once and of its end once."""
        started = _later(0)
        try:
            report = self._poll()
        except (LeaseLost, StoreUnavailable):  # nothing can be recorded: the service waits or stands by
            raise
        except Exception as error:
            at = _later(0)
            self.store.set_flags(last_error=f"{type(error).__name__}: {error}", last_error_at=at,
                                 failing_since=self.store.flag("failing_since") or at)
            self.check_health()
            raise
        # A full poll saw every mail that had arrived when it began: the brake's line between backlog and lost state.
        self.store.set_flags(last_poll_ok=_later(0), failing_since=None,
                             **({LAST_FULL_POLL: started} if report.complete else {}))
        self.check_health()
        return report

    def _poll(self) -> PollReport:
        report = PollReport()
        paused = self.store.paused()
        if paused:
            self.log.warning("poll.paused", reason=paused, hint="mailrelay resume")
            return report
        self.log.info("poll.started")
        brake = FloodBrake(self.store, self.limits.max_forwards_per_poll, self.limits.arrival_margin_seconds)
        with self.source.open(self.store) as inbox, self.transport.open() as outbox:
            self._to_archive = []
            replaced = inbox.recreated_from is not None and self._replaced(inbox, report)
            ahead = Ahead(iter(()) if replaced else inbox.fetch_new(), self._decide_ahead, self.policy)
            try:
                for raw, decided in ahead:
                    if self.stop_requested or self._braked(brake, report):
                        break
                    outcome = self._handle(raw, inbox, outbox, decided)
                    brake.count(raw, outcome)
                    raw = decided = None  # not held while the next (maybe 20 MB) mail is fetched
                    self._count(report, outcome)
                    if len(self._to_archive) >= inbox.batch_size:
                        self._archive_batch(inbox, report)
                else:
                    report.complete = not replaced
            finally:
                ahead.close()
            self._archive_batch(inbox, report)
            for key in inbox.vanished() if report.complete else ():
                self._vanished(key, inbox)
            if not self.store.paused():  # the editors' releases and drops: forwards like any other
                for outcome in self._queue_work().carry_out(inbox, outbox):
                    self._count(report, outcome)
            self._send_acks(outbox)
            self._alert(report, outbox)
        count, head = self.store.audit_head()
        # The chain's head in the journal anchors the audit trail outside the state file.
        self.log.info("poll.finished", audit_records=count, audit_head=head, **report.counts)
        return report

    def _count(self, report: PollReport, outcome: dict) -> None:
        report.counts[outcome["outcome"]] += 1
        report.mails.append(outcome)
        self.progress()

    def _queue_work(self) -> QueueWork:
        return QueueWork(self.store, self.policy(), self.identity, self._audit, self._breaker, decision_record)

    def purge(self) -> int:
        """Drop the raw bytes of finished mails older than the retention (the metadata stays, and the
        purge itself is an audit record)."""
        purged = self.store.purge_raw(_later(-self.limits.keep_raw_days * 86400))
        self.log.info("raw.purged", mails=purged, keep_raw_days=self.limits.keep_raw_days)
        return purged

    def check_health(self) -> None:
        """Tell the operators once of an outage and once of its end (outage.py)."""
        outage.check(self)

    def _replaced(self, inbox: Inbox, report: PollReport) -> bool:
        """The mailbox was recreated. If most mails the store expects there are not in it, it is not the
        mailbox we knew (restored from elsewhere, another account): pause rather than forward what may be
        a flood of handled mail. Otherwise go on; mails are matched by bytes and Message-ID."""
        expected = self.store.left_in(inbox.recreated_from)
        present = {_bracketed(message_id) for message_id in inbox.message_ids()} if expected else set()
        missing = [record for record in expected if _bracketed(record.message_id) not in present]
        detail = {"previous": inbox.recreated_from, "expected": len(expected), "missing": len(missing)}
        replaced = len(missing) * 2 > len(expected)
        inbox.accept_recreated()
        if not replaced:
            self.log.warning("mailbox.recreated", **detail)
            self.store.event(None, "mailbox.recreated", detail)
            return False
        reason = (f"mailbox recreated and {len(missing)} of the {len(expected)} mails expected in it are missing;"
                  " forwarding paused until `mailrelay resume`")
        self.log.error("mailbox.replaced", reason=reason, **detail)
        self.store.event(None, "mailbox.replaced", dict(detail, subjects=[record.subject for record in missing]))
        self.store.pause(reason)
        report.mails += [{"key": record.source_key, "outcome": "missing", "subject": record.subject,
                          "error": "not in the recreated mailbox", "quarantined": True} for record in missing]
        report.mails.append({"key": "-", "outcome": "paused", "subject": "Weiterleitung angehalten",
                             "error": reason, "quarantined": True})
        return True

    def _braked(self, brake: FloodBrake, report: PollReport) -> bool:
        """Whether the flood brake has just paused forwarding (brake.py says when); if so, the log and the
        alert desk say so."""
        reason = brake.tripped()
        if reason is None:
            return False
        self.log.error("relay.paused", reason=reason)
        report.mails.append({"key": "-", "outcome": "paused", "subject": "Weiterleitung angehalten",
                             "error": reason, "quarantined": True})
        return True

    def _handle(self, raw: RawMail, inbox: Inbox, outbox,
                decided: Callable[[], Processed | None] = lambda: None) -> dict:
        """One mail's way; `decided` gives its decision if one was made ahead (decider.py)."""
        ready = decided()
        sha256 = hashlib.sha256(raw.data).hexdigest()
        record = self.store.find(sha256)
        if record is not None and record.state in FINAL_STATES:
            inbound = ready = None  # seen before: nothing to decide
        else:
            inbound = ready.inbound if ready else _parse_or_none(raw)
        # What is known before deciding, in one commit; above all the try, which must outlive a crash
        # in what follows.
        with self.store.group():
            started = self._start(raw, sha256, record, inbound, inbox)
        if isinstance(started, dict):
            return started
        mail_id = started
        try:
            return dict(self._process(mail_id, raw, inbound, inbox, outbox, ready), new=record is None)
        except (SourceError, LeaseLost, StoreUnavailable):  # the mailbox or the state is out of reach, or
            raise  # another node took over: this poll ends, the mail is handled again by the next one
        except Exception as error:  # a bug, a broken template, a transport error: costs one mail, not the poll
            with self.store.group():
                return self._quarantine_on_error(mail_id, raw, inbox, error)

    def _start(self, raw: RawMail, sha256: str, record: MailRecord | None, inbound: Inbound | None,
               inbox: Inbox) -> int | dict:
        """Record the mail (or find it recorded) and count its try: its id, to go on deciding; or its
        outcome when there is nothing to decide (seen before, waiting, given up on)."""
        if record is not None and record.state in FINAL_STATES:
            return self._seen_again(record, raw, inbox)
        copy = self._copy_of(inbound) if record is None else None
        if copy is not None:
            return self._seen_again(copy, raw, inbox, same="message-id, sender and subject")
        mail_id = record.id if record else self._add(raw, sha256, inbound)
        if record is not None and record.source_key != raw.key and inbox.holds(record.source_key):
            # A second copy with the same bytes while the first is still in the inbox, on its way.
            return self._seen_again(record, raw, inbox, same="bytes, a second copy")
        if record is not None and record.source_key != raw.key:  # moved, or its mailbox recreated
            self._audit(mail_id, "mail.moved", {"from": record.source_key, "to": raw.key}, source_key=raw.key)
        inbox.recorded(raw.key)
        if record is not None and record.waiting:  # a Maildir offers every mail; IMAP only due ones
            return {"key": raw.key, "outcome": "waiting", "route": record.route or "none", "subject": record.subject}
        tries = (record.tries if record else 0) + 1
        if tries > self.limits.max_tries:  # each earlier try ended the process: a poison mail
            return self._quarantine_on_error(mail_id, raw, inbox, RuntimeError(
                f"gave up after {self.limits.max_tries} tries that did not finish"))
        self.store.update(mail_id, "mail.try", {"try": tries}, tries=tries)
        return mail_id

    def _process(self, mail_id: int, raw: RawMail, inbound: Inbound | None, inbox: Inbox, outbox,
                 ready: Processed | None = None) -> dict:
        processed = ready or self._decide(raw, inbound)
        if processed.forward is not None:
            return self._deliver(mail_id, raw.key, processed, inbox, outbox)
        with self.store.group():
            self._record_decision(mail_id, processed)
            state = _STATE_OF_ACTION[processed.decision.action]
            self._audit(mail_id, f"mail.{state}", state=state)
            return self._archive(mail_id, raw.key, state, inbox, processed)

    def _decide(self, raw: RawMail, inbound: Inbound | None) -> Processed:
        inbound = inbound or parse(raw)  # parsed again when the first parse failed, to raise its error here
        if raw.oversize:  # only the header is here: nothing to classify, a person decides
            reason = f"too large: {raw.oversize} bytes; only its header was fetched"
            return Processed(inbound, None, Decision(Action.QUARANTINE, "size-limit", reason=reason))
        return decide(inbound, self.policy(), self.identity)

    def _decide_ahead(self, raw: RawMail) -> Processed | None:
        """What the decider process does with a mail: parse and decide; None where that fails (the
        relay's process then does it again itself, to record the failure as its own)."""
        inbound = _parse_or_none(raw)
        return self._decide(raw, inbound) if inbound is not None else None

    def _add(self, raw: RawMail, sha256: str, inbound: Inbound | None) -> int:
        """Record the mail and its bytes before anything else is done with it."""
        from_address = inbound.from_.address if inbound and inbound.from_ else ""
        mail_id = self.store.add_mail(sha256, inbound.message_id if inbound else "", raw.key, from_address,
                                      inbound.subject if inbound else "", raw.data,
                                      thread_of(inbound) if inbound else None,
                                      raw.arrived.isoformat(timespec="milliseconds") if raw.arrived else None)
        self.log.info("mail.received", mail_id=mail_id, source=raw.key, sha256=sha256,
                      message_id=inbound.message_id if inbound else "")
        return mail_id

    def _copy_of(self, inbound: Inbound | None) -> MailRecord | None:
        if inbound is None or not inbound.message_id or inbound.from_ is None:
            return None
        return self.store.find_copy(inbound.message_id, inbound.from_.address, inbound.subject)

    def _seen_again(self, record: MailRecord, raw: RawMail, inbox: Inbox, same: str = "bytes") -> dict:
        """A mail already handled (same bytes, or the same mail delivered again): never forwarded twice."""
        # Not archived yet: left by a crash (resumed), or on its way out with this batch (a copy).
        on_its_way = any(key == record.source_key for _, key, _ in self._to_archive)
        event = "mail.duplicate" if record.archived_to or same != "bytes" or on_its_way else "mail.resumed"
        inbox.recorded(raw.key)
        self._audit(record.id, event, detail={"source": raw.key, "state": record.state, "same": same})
        # A copy of a mail still on its way (a forward waiting for a retry) goes with the processed mail.
        state = record.state if record.state in FINAL_STATES else "forwarded"
        outcome = self._archive(record.id, raw.key, state, inbox, None)
        outcome.update(outcome="duplicate" if event == "mail.duplicate" else record.state, route=record.route or "none",
                       subject=record.subject, quarantined=False)
        return outcome

    def _record_decision(self, mail_id: int, processed: Processed) -> None:
        detail, columns = decision_record(processed)
        self._audit(mail_id, "mail.decided", detail=detail, state="decided", **columns)

    def _deliver(self, mail_id: int, key: str, processed: Processed, inbox: Inbox, outbox) -> dict:
        forward = processed.forward
        with self.store.group(durable=True):  # a power loss after the server accepted must not forget it was sent
            self._record_decision(mail_id, processed)
            tripped = self._breaker(processed.inbound)
            if tripped:
                detail, reason = tripped
                self._audit(mail_id, "mail.circuit_breaker", detail, severity="error", state="quarantined",
                            reason=reason)
                return dict(self._archive(mail_id, key, "quarantined", inbox, processed), error=reason)
            self._audit(mail_id, "mail.sending", {"desk": forward.desk, "message_id": forward.message_id},
                        state="sending", forward_message_id=forward.message_id)
        self.store.sync()  # and this node may still act (a shared store's lease)
        delivery: Delivery = outbox.send(forward)
        outcome = self._delivered(mail_id, key, processed, delivery, inbox)
        self.store.sync()  # nor that the server accepted it: the window for sending it twice stays this short
        return outcome

    def _delivered(self, mail_id: int, key: str, processed: Processed, delivery: Delivery, inbox: Inbox) -> dict:
        """Record what the SMTP server said of the forward, at once and on its own: committed when the
        record returns, so the window in which a crash sends the forward again does not grow."""
        forward = processed.forward
        detail = {"desk": forward.desk, "recipients": list(forward.recipients), "reply": delivery.reply}
        if delivery.status is Status.ACCEPTED:
            detail["refused"] = list(delivery.refused)
            ack, skipped = self._acknowledgement(mail_id, processed)
            now = _later(0)
            review = dict(queue="review", queued_at=now, queue_left=None) \
                if is_review(processed.decision, self.policy().rules) else {}
            self._audit(mail_id, "mail.forwarded", detail=detail, severity="warning" if delivery.refused else "info",
                        ack=ack, state="forwarded", forwarded_at=now, **review)
            if skipped:
                self._audit(mail_id, "ack.skipped", {"reason": skipped})
            return self._archive(mail_id, key, "forwarded", inbox, processed)
        if delivery.status is Status.TEMPORARY:
            attempts = self.store.get(mail_id).attempts + 1
            detail["next_attempt"] = _later(self._backoff(attempts))
            self._audit(mail_id, "mail.deferred", detail=detail, severity="warning", state="retry",
                        attempts=attempts, next_attempt=detail["next_attempt"], tries=0)
            return _summary(key, "deferred", processed)
        self._audit(mail_id, "mail.refused", detail=detail, severity="warning", state="quarantined")
        return dict(self._archive(mail_id, key, "quarantined", inbox, processed), error=f"refused: {delivery.reply}")

    def _acknowledgement(self, mail_id: int, processed: Processed) -> tuple[PendingAck | None, str]:
        """The acknowledgement to queue with the forward, or why there is none ("" when they are off)."""
        answer = processed.acknowledgement
        if answer is None:
            return None, processed.ack_note
        days = self.policy().rules.acknowledgements.days
        if self.store.answered_since(answer.recipients[0], _later(-days * 86400)):
            return None, f"{answer.recipients[0]} was answered within the last {days} days"
        return PendingAck(mail_id, answer.recipients[0], answer.message_id, answer.data), ""

    def _send_acks(self, outbox) -> None:
        """Send the queued acknowledgements that are due, each recorded before and after, like forwards."""
        for ack in self.store.due_acks():
            self._audit(ack.mail_id, "ack.sending", {"to": ack.address, "message_id": ack.message_id})
            self.store.sync()
            try:  # a lost lease (raised by sync above) is not caught here: the poll ends
                delivery = outbox.send(Forward("applicant", (ack.address,), "", ack.message_id, ack.data))
            except Exception as error:  # a bug must not cost the poll; the answer is tried again later
                delivery = Delivery(Status.TEMPORARY, f"{type(error).__name__}: {error}")
            detail = {"to": ack.address, "message_id": ack.message_id, "reply": delivery.reply}
            if delivery.status is Status.ACCEPTED:
                self.log.info("ack.sent", mail_id=ack.mail_id, **detail)
                self.store.ack_result(ack.mail_id, "ack.sent", detail, "sent")
            elif delivery.status is Status.TEMPORARY:
                detail["next_attempt"] = _later(self._backoff(ack.attempts + 1))
                self.log.warning("ack.deferred", mail_id=ack.mail_id, **detail)
                self.store.ack_result(ack.mail_id, "ack.deferred", detail, "pending", detail["next_attempt"])
            else:
                self.log.warning("ack.refused", mail_id=ack.mail_id, **detail)
                self.store.ack_result(ack.mail_id, "ack.refused", detail, "refused")
            self.progress()

    def _breaker(self, inbound: Inbound) -> tuple[dict, str] | None:
        """A sender or a thread producing forwards faster than people write mail: a loop, or a flood."""
        hour_ago = _later(-3600)
        sender = inbound.from_.address if inbound.from_ else ""
        limit = self.limits.forwards_per_sender_per_hour
        if self.store.forwards_from(sender, hour_ago) >= limit:
            return {"sender": sender, "limit": limit}, f"more than {limit} forwards from {sender} within an hour"
        thread = thread_of(inbound)
        limit = self.limits.forwards_per_thread_per_hour
        if thread and self.store.forwards_in_thread(thread, hour_ago) >= limit:
            return {"thread": thread, "limit": limit}, f"more than {limit} forwards in the thread {thread} within an hour"
        return None

    def _alert(self, report: PollReport, outbox) -> None:
        """One note per poll to the alert desk naming the mails quarantined; in the log if it cannot be sent."""
        lines = [f"- {m.get('subject') or '(ohne Betreff)'} [{m['key']}]: {m.get('error') or m.get('reason') or ''}"
                 for m in report.mails if m.get("quarantined", m["outcome"] == "quarantined")]
        rules = self.policy().rules
        if not lines or not rules.alert_desk:
            return
        alert = render_alert(lines, rules.desks[rules.alert_desk], self.identity.from_address, self.identity.relay_id)
        self.store.sync()
        try:
            delivery = outbox.send(alert)
        except Exception as error:  # the note must never cost the poll; the log has it then
            delivery = Delivery(Status.TEMPORARY, f"{type(error).__name__}: {error}")
        accepted = delivery.status is Status.ACCEPTED
        getattr(self.log, "warning" if accepted else "error")(
            "alert.sent" if accepted else "alert.failed", desk=rules.alert_desk, mails=lines, reply=delivery.reply)
        self.store.event(None, "alert.sent" if accepted else "alert.failed",
                         {"desk": rules.alert_desk, "mails": lines, "reply": delivery.reply})

    def _backoff(self, attempts: int) -> float:
        """Seconds until the next try: doubling from the first wait up to the longest."""
        shortest, longest = self.limits.retry_seconds
        return min(shortest * 2 ** min(attempts - 1, 32), longest)

    def _archive(self, mail_id: int, key: str, state: str, inbox: Inbox, processed: Processed | None) -> dict:
        """The mail's outcome is recorded (or is being, in the caller's group): it joins its batch, which
        leaves the inbox together (_archive_batch)."""
        self._to_archive.append((mail_id, key, state))
        return _summary(key, state, processed)

    def _archive_batch(self, inbox: Inbox, report: PollReport) -> None:
        """Move the mails whose outcomes are recorded: those records made durable once, then one move per
        target mailbox, then the moves recorded in one commit. A crash before the records of the moves
        leaves recorded mail in the inbox or unrecorded copies in the archive; the next poll archives the
        first without sending again and records the second (_vanished)."""
        batch, self._to_archive = self._to_archive, []
        if not batch:
            return
        self.store.sync()  # the outcomes are on disk before the mails leave the inbox
        targets: dict[str, list[str]] = {}
        for _, key, state in batch:
            targets.setdefault(_ARCHIVE_TARGET[state], []).append(key)
        archived: dict[str, Archived | MailError] = {}
        for target, keys in targets.items():
            archived.update(inbox.archive(keys, target))
        with self.store.group():
            for mail_id, key, state in batch:
                where = archived[key]
                if isinstance(where, MailError):  # the mail stays in the inbox and is archived at a later poll
                    self._audit(mail_id, "mail.archive_failed", {"error": str(where)}, severity="warning")
                    _archive_failed(report, key, state)
                    continue
                # Where the quarantined copy lies, so that a release finds that very mail.
                copy = {"queue_key": where.key} if state == "quarantined" else {}
                self._audit(mail_id, "mail.archived", detail={"mailbox": where.mailbox}, archived_to=where.mailbox,
                            **copy)

    def _vanished(self, key: str, inbox: Inbox) -> None:
        """A mail whose outcome is recorded that is no longer in the inbox, its move not recorded: a crash
        came between the move and its record. The copy is looked for where the outcome sends it and the
        move recorded, so the mail is finished and not asked for again. (A mail taken out before its
        outcome was recorded stays as it is: not ours to close.)"""
        record = next((mail for mail in self.store.left_in(key) if mail.source_key == key), None)
        if record is None or record.state not in FINAL_STATES:
            return
        copy = inbox.find_copy(_ARCHIVE_TARGET[record.state], None, record.message_id, record.sha256)
        if copy is None:
            self._audit(record.id, "mail.vanished", {"key": key, "state": record.state}, severity="warning",
                        archived_to="(not found)")
            return
        mailbox = mailbox_of(copy)
        self._audit(record.id, "mail.archived", {"mailbox": mailbox, "found": copy}, archived_to=mailbox,
                    **({"queue_key": copy} if record.state == "quarantined" else {}))

    def _quarantine_on_error(self, mail_id: int, raw: RawMail, inbox: Inbox, error: Exception) -> dict:
        frames = traceback.extract_tb(error.__traceback__)
        detail = {"key": raw.key, "error": f"{type(error).__name__}: {error}",
                  "at": f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "runner"}
        self._audit(mail_id, "mail.failed", detail, severity="error", state="quarantined", reason=detail["error"])
        self._archive(mail_id, raw.key, "quarantined", inbox, None)
        subject = self.store.get(mail_id).subject
        return {"key": raw.key, "outcome": "quarantined", "route": "none", "subject": subject, "error": detail["error"]}

    def _audit(self, mail_id: int, event: str, detail: dict | None = None, severity: str = "info",
               ack: PendingAck | None = None, **columns) -> None:
        """The one place a step becomes both a log line and a durable record."""
        detail = detail or {}
        getattr(self.log, severity)(event, mail_id=mail_id, **detail)
        self.store.update(mail_id, event, detail, ack=ack, **columns)


def decision_record(processed: Processed) -> tuple[dict, dict]:
    """A decision as the "mail.decided" audit detail and the mail's columns."""
    decision, classification = processed.decision, processed.classification
    columns = dict(route=decision.route, rule=decision.rule, rules_version=decision.rules_version,
                   reason=decision.reason)
    detail = {"action": decision.action, "route": decision.route, "rule": decision.rule,
              "reason": decision.reason, "rules_version": decision.rules_version}
    if classification is not None:
        columns.update(kind=classification.kind, sender=classification.sender, level=classification.level,
                       country=classification.country, confidence=round(classification.confidence, 3))
        detail["classification"] = {
            "kind": classification.kind, "sender": classification.sender, "level": classification.level,
            "country": classification.country, "confidence": round(classification.confidence, 3),
            "unauthenticated": list(classification.unauthenticated)}
        detail["evidence"] = [_evidence(item) for item in classification.evidence]
    return detail, columns


def thread_of(inbound: Inbound) -> str | None:
    """The thread a mail answers: the first Message-ID of its References, else its In-Reply-To."""
    for name in ("references", "in-reply-to"):
        for value in inbound.header_values(name):
            found = _ANGLE.search(value)
            if found:
                return found.group(0)
    return None


def _bracketed(message_id: str) -> str:
    """The <id> part of a Message-ID header, so comments and spacing around it do not matter."""
    found = _ANGLE.search(message_id)
    return found.group(0) if found else message_id.strip()


def _parse_or_none(raw: RawMail) -> Inbound | None:
    try:
        return parse(raw)
    except Exception:  # recorded with empty fields; the error is raised again when deciding
        return None


def _later(seconds: float) -> str:
    return (datetime.now(timezone.utc) + timedelta(seconds=seconds)).isoformat(timespec="milliseconds")


def _archive_failed(report: PollReport, key: str, state: str) -> None:
    """The poll's report of the mail under `key`, now that its move failed: it stays in the inbox."""
    for mail in reversed(report.mails):
        if mail["key"] == key:
            report.counts[mail["outcome"]] -= 1
            if report.counts[mail["outcome"]] <= 0:
                del report.counts[mail["outcome"]]
            report.counts["archive_failed"] += 1
            mail.update(outcome="archive_failed", quarantined=state == "quarantined")
            return


def _summary(key: str, outcome: str, processed: Processed | None) -> dict:
    decision = processed.decision if processed else None
    classification = processed.classification if processed else None
    return {
        "key": key,
        "outcome": outcome,
        "route": decision.route if decision else "none",
        "rule": decision.rule if decision else "",
        "kind": str(classification.kind) if classification else "",
        "subject": processed.inbound.subject if processed else "",
        "reason": decision.reason if decision else "",
    }


def _evidence(item) -> dict:
    return {"field": item.field, "value": item.value, "signal": item.signal, "where": item.where,
            "weight": item.weight}
