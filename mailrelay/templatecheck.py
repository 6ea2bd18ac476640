"""Trial renders of the templates (summaries, subject, acknowledgements), so a template error is found by
`check`, not by a mail; its problems say which template, which line and which variable, in words."""
from __future__ import annotations

import dataclasses
import re
import traceback
from datetime import datetime, timezone
from pathlib import Path

import jinja2

from mailrelay import model
from mailrelay.i18n import tr
from mailrelay.model import (
    Action,
    Address,
    Attachment,
    Classification,
    Decision,
    Evidence,
    Inbound,
    Kind,
    Level,
    Sender,
)
from mailrelay.render import Templates, ack_context, summary_context
from mailrelay.rules import Desk
from mailrelay.templatesyntax import syntax_problem
from mailrelay.tomlcheck import Problem

_UNDEFINED = re.compile(r"^'([^']+)' is undefined$")
_NO_ATTRIBUTE = re.compile(r"^'(.+?)(?: object)?' has no attribute '([^']+)'$")
_INTERNAL = re.compile(r"'?<?mailrelay\.[\w.]+ object(?: at 0x[0-9a-f]+)?>?'?")
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


def compile_problem(error: jinja2.TemplateError, directory: Path) -> Problem:
    """A template that does not compile or is missing, as a problem at its file and line."""
    if isinstance(error, jinja2.TemplateNotFound):
        return Problem(str(directory / error.name), 0, tr(f"die Vorlage {error.name} fehlt", f"template {error.name} is missing"),
                       tr("die Datei aus templates/ der Auslieferung zurückholen", "restore the file from the shipped templates/"))
    if isinstance(error, jinja2.TemplateSyntaxError):
        line, message, hint = syntax_problem(error, sorted(jinja2.Environment().filters) + ["filesize"])
        return Problem(error.filename or str(directory), line, f"{_what(error.filename or '')[0]}: {message}", hint)
    return Problem(str(directory), 0, tr(f"Vorlage: {error}", f"template: {error}"))


def trial_render(templates: Templates, directory: Path) -> list[Problem]:
    """Render every template with sample values; each failure becomes a problem at its template line."""
    problems: dict[tuple[str, int, str], Problem] = {}
    for mail, classification, decision in _samples():
        context = summary_context(mail, classification, decision, _DESK)
        for template in (templates.subject, templates.text, templates.html):
            _try(template, context, directory, problems)
    for mail in (_sample_mail(True), dataclasses.replace(_sample_mail(False), from_=None)):
        for key, template in templates.acknowledgements.items():
            _try(template, ack_context(mail, None if key.startswith("abroad.") else _DESK), directory, problems)
    return list(problems.values())


def _try(template: jinja2.Template, context: dict, directory: Path, problems: dict) -> None:
    try:
        template.render(context)
    except Exception as error:  # any error a template raises is the template's problem
        problem = _problem(error, template, context, directory)
        problems.setdefault((problem.file, problem.line, problem.message), problem)


def _problem(error: Exception, template: jinja2.Template, context: dict, directory: Path) -> Problem:
    """Where in which template the error arose (Jinja puts template lines into the traceback), in words
    that name the variable as the template writes it, never a Python class. The words name the template
    file the mistake is in, so a mistake in _labels.j2 is one problem, whichever template imports it."""
    if isinstance(error, jinja2.TemplateError) and not isinstance(error, jinja2.UndefinedError):
        if isinstance(error, (jinja2.TemplateSyntaxError, jinja2.TemplateNotFound)):
            return compile_problem(error, directory)  # an imported template ({% from "_labels.j2" ... %})
    frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename.endswith(".j2")]
    where = frames[-1] if frames else None
    file = where.filename if where else (template.filename or str(directory))
    line = where.lineno if where else 0
    what = _what(file)
    if isinstance(error, TypeError):
        return Problem(file, line, f"{what[0]}: " + tr("ein Wert passt nicht zu dem, was die Zeile mit ihm tut",
                                                       "a value does not fit what the line does with it"),
                       tr("Filter und Vergleiche brauchen ein einzelnes Feld, z. B. attachment.size statt attachment",
                          "filters and comparisons need a single field, like attachment.size instead of attachment"))
    message, hint = _render_words(str(getattr(error, "message", None) or error), _line_text(file, line), context, what)
    return Problem(file, line, f"{what[0]}: {message}", hint)


def _render_words(text: str, written: str, context: dict, what: tuple[str, str]) -> tuple[str, str]:
    if (undefined := _UNDEFINED.match(text)) is not None:
        names = ", ".join(sorted(context))
        return (tr(f"'{undefined[1]}' gibt es {what[1]} nicht", f"'{undefined[1]}' is not defined {what[2]}"),
                tr(f"vorhanden: {names}", f"available: {names}"))
    if (missing := _NO_ATTRIBUTE.match(text)) is not None:
        owner, attribute = missing[1], missing[2]
        written_as = _expression(written, attribute)
        base = written_as.rpartition(".")[0] or "…"
        if owner == "None":
            return (tr(f"'{written_as}': {base} ist bei manchen Mails leer", f"'{written_as}': {base} is empty for some mails"),
                    tr(f"mit {{% if {base} %}} … {{% endif %}} umschließen", f"wrap it in {{% if {base} %}} … {{% endif %}}"))
        fields = _fields(owner)
        return (tr(f"'{written_as}' gibt es nicht: {base} hat kein Feld '{attribute}'",
                   f"'{written_as}' does not exist: {base} has no field '{attribute}'"),
                tr(f"vorhanden: {fields}", f"available: {fields}") if fields else "")
    plain = _INTERNAL.sub(tr("ein Wert", "a value"), text)
    return tr(f"Fehler beim Ausfüllen: {plain}", f"error while filling in: {plain}"), ""


def _expression(written: str, attribute: str) -> str:
    """`mail.phone` as the template line writes it, found by the attribute's name."""
    found = re.search(rf"([A-Za-z_][\w.]*?)\s*(?:\.\s*{re.escape(attribute)}\b|\[\s*['\"]{re.escape(attribute)}['\"]\s*\])",
                      written)
    return f"{found[1]}.{attribute}" if found else attribute


def _fields(owner: str) -> str:
    """The fields a template may use on a value of the model class named `owner` (like 'mailrelay.model.Inbound')."""
    cls = getattr(model, owner.rpartition(".")[2], None) if owner.startswith("mailrelay.") else None
    if cls is None or not dataclasses.is_dataclass(cls):
        return ""
    properties = [name for name, value in vars(cls).items() if isinstance(value, property) and not name.startswith("_")]
    return ", ".join(sorted([field.name for field in dataclasses.fields(cls)] + properties))


def _what(filename: str) -> tuple[str, str, str]:
    """What the template is, in words: (label, German 'in …', English 'in …')."""
    name = Path(filename).name
    if name.startswith("acknowledgement"):
        return tr("Vorlage der Eingangsbestätigung", "acknowledgement template"), "in der Eingangsbestätigung", \
            "in the acknowledgement"
    if name.startswith("subject"):
        return tr("Vorlage des Betreffs", "subject template"), "im Betreff", "in the subject"
    if name.startswith("summary"):
        return tr("Vorlage der Zusammenfassung", "summary template"), "in der Zusammenfassung", "in the summary"
    return tr("Vorlage", "template"), "in dieser Vorlage", "in this template"


def _line_text(file: str, line: int) -> str:
    try:
        lines = Path(file).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return ""
    return lines[line - 1] if 0 < line <= len(lines) else ""
