"""Trial renders of the summary templates, so a template error is found by `check`, not by a mail."""
from __future__ import annotations

import dataclasses
import traceback
from datetime import datetime, timezone
from pathlib import Path

import jinja2

from mailrelay.model import (Action, Address, Attachment, Classification, Decision, Evidence, Inbound, Kind,
                             Level, Sender)
from mailrelay.render import Templates, ack_context, summary_context
from mailrelay.rules import Desk
from mailrelay.tomlcheck import Problem

_DESK = Desk("desk-public", "Fachreferat (Probe)", ("desk@example.org",))


def _sample_mail(with_extras: bool) -> Inbound:
    return Inbound(
        key="check", message_id="<check@example.org>", from_=Address("Erika Muster", "erika@example.org"),
        reply_to=(Address("", "reply@example.org"),) if with_extras else (), to=(),
        subject="Bewerbung" if with_extras else "", date=datetime.now(timezone.utc) if with_extras else None,
        text="Text" if with_extras else "",
        attachments=(Attachment("a.pdf", "application/pdf", 2048),) if with_extras else (), headers=(),
        content_type="text/plain", raw=b"Subject: check\r\n\r\nText\r\n", sha256="0" * 64)


def _samples():
    """Every kind, sender and level, with and without the optional parts (review, attachments, a From,
    authentication failures), so a label or variable missing for one of them is found here."""
    levels = [Level.REGIONAL, Level.NATIONAL, Level.LOCAL, None]
    for index, (kind, sender) in enumerate((k, s) for k in Kind for s in Sender):
        extras = index % 2 == 0
        mail = _sample_mail(extras)
        if index % 3 == 0:
            mail = dataclasses.replace(mail, from_=None)
        evidence = (Evidence("sender", str(sender), f"sender.{sender} 'Wort'", "signature line 2"),
                    Evidence("country", "DE", "country.DE '+49'", "signature line 4")) if extras else ()
        level = levels[index % len(levels)] if sender is Sender.PUBLIC_BODY else None
        classification = Classification(kind, sender, level, "DE" if extras else "unknown", 0.9, evidence,
                                        ("dmarc=fail",) if extras else ())
        decision = Decision(Action.FORWARD, "check", _DESK.name, "Zur Prüfung" if extras else "", "check")
        yield mail, classification, decision


def trial_render(templates: Templates, directory: Path) -> list[Problem]:
    """Render every template with sample values; each failure becomes a problem at its template line."""
    problems: dict[tuple[str, int, str], Problem] = {}
    for mail, classification, decision in _samples():
        context = summary_context(mail, classification, decision, _DESK)
        for template in (templates.subject, templates.text, templates.html):
            try:
                template.render(context)
            except Exception as error:  # any error a template raises is the template's problem
                problem = _problem(error, directory)
                problems.setdefault((problem.file, problem.line, problem.message), problem)
    for mail in (_sample_mail(True), dataclasses.replace(_sample_mail(False), from_=None)):
        for key, template in templates.acknowledgements.items():
            try:
                template.render(ack_context(mail, None if key.startswith("abroad.") else _DESK))
            except Exception as error:  # any error a template raises is the template's problem
                problem = _problem(error, directory)
                problems.setdefault((problem.file, problem.line, problem.message), problem)
    return list(problems.values())


def _problem(error: Exception, directory: Path) -> Problem:
    """Where in which template the error arose: Jinja puts template lines into the traceback."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename.endswith(".j2")]
    where = frames[-1] if frames else None
    file = where.filename if where else str(directory)
    message = f"template: {getattr(error, 'message', None) or error}"
    if isinstance(error, jinja2.UndefinedError):
        message += " (the summary does not provide it)"
    return Problem(file, where.lineno if where else 0, message)
