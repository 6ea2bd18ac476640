"""Whether an applicant gets an acknowledgement, and which: pure, so `explain` shows the same answer the
relay acts on. The only thing decided later is the per-address window (it needs the store)."""
from __future__ import annotations

import email.utils
from dataclasses import dataclass

from mailrelay.model import Action, Classification, Decision, Inbound, Kind
from mailrelay.parse import ADDR_SPEC
from mailrelay.rules import Rules

GERMANY = "DE"
# Addresses that take no answers (RFC 3834 section 2, and common practice).
_NO_REPLY_LOCAL_PARTS = {"mailer-daemon", "postmaster", "noreply", "no-reply", "donotreply", "do-not-reply",
                         "nobody", "bounce", "bounces", "listserv", "majordomo"}
# Headers that mark list, bulk or automatic mail, which RFC 3834 says never to answer.
_LIST_HEADERS = ("list-id", "list-unsubscribe", "list-post", "list-help", "mailing-list")


@dataclass(frozen=True)
class Plan:
    send: bool
    reason: str  # why it is sent or not, for the audit trail and `explain`
    to: str = ""
    template: str = ""  # a key of render.ACK_TEMPLATES


def plan(inbound: Inbound, classification: Classification | None, decision: Decision, rules: Rules,
         own_address: str) -> Plan | None:
    """None when acknowledgements are off; otherwise whether to answer, to whom, with which text."""
    settings = rules.acknowledgements
    if not settings.enabled:
        return None
    refusal = _refusal(inbound, classification, decision, rules, own_address)
    if refusal:
        return Plan(False, refusal)
    to = return_path(inbound) or ""
    language = "en" if classification.language == "en" else "de"
    if classification.country == GERMANY:
        return Plan(True, f"application forwarded to {decision.desk}; answered at the return path", to, language)
    if not settings.abroad:
        return Plan(False, f"applicant from abroad ({classification.country}); answers abroad are switched off")
    return Plan(True, f"application from abroad ({classification.country}); the answer for applicants abroad",
                to, f"abroad.{language}")


def _refusal(inbound: Inbound, classification: Classification | None, decision: Decision, rules: Rules,
             own_address: str) -> str:
    """Why this mail must not be answered, or ""."""
    if decision.action is not Action.FORWARD:
        return "not forwarded"
    if classification is None or classification.kind is not Kind.APPLICATION:
        return f"not an application ({classification.kind if classification else 'not classified'})"
    if decision.rule == "low-confidence-review":
        return "sent to the editors for review: no answer on a guess"
    if classification.country == "unknown":
        return "the applicant's country is not known"
    automatic = _automatic(inbound)
    if automatic:
        return automatic
    if classification.unauthenticated:
        return f"our receiving server could not authenticate the sender ({', '.join(classification.unauthenticated)})"
    to = return_path(inbound)
    if to is None:
        return "no valid return path to answer"
    local = to.partition("@")[0]
    if local in _NO_REPLY_LOCAL_PARTS or local.startswith("owner-") or local.endswith("-request"):
        return f"{to} takes no answers"
    ours = {own_address} | {address for desk in rules.desks.values() for address in desk.addresses}
    if to in ours:
        return f"{to} is our own or a desk's address"
    return ""


def _automatic(inbound: Inbound) -> str:
    submitted = (inbound.header("auto-submitted") or "no").split(";")[0].strip().lower()
    if submitted != "no":
        return f"Auto-Submitted: {submitted}"
    precedence = (inbound.header("precedence") or "").strip().lower()
    if precedence in ("bulk", "list", "junk"):
        return f"Precedence: {precedence}"
    listed = next((name for name in _LIST_HEADERS if inbound.header(name) is not None), None)
    return f"list mail ({listed})" if listed else ""


def return_path(inbound: Inbound) -> str | None:
    """The envelope sender the receiving server recorded: RFC 3834 answers go there, not to From."""
    value = inbound.header("return-path")
    if value is None:
        return None
    address = email.utils.parseaddr(value)[1].lower()
    return address if address and ADDR_SPEC.match(address) and "=?" not in address else None
