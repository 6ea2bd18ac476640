"""What the relay would do with one mail file, and why; no network, nothing recorded."""
from __future__ import annotations

import email
import email.policy
from pathlib import Path

from mailrelay.config import Settings, load_settings
from mailrelay.i18n import tr
from mailrelay.mailfile import read_mail
from mailrelay.model import Processed, RawMail
from mailrelay.parse import parse
from mailrelay.pipeline import Identity, decide
from mailrelay.policy import Policy, load_policy
from mailrelay.route import explain_rule
from mailrelay.ruletext import DECIDES, NO_MATCH, confidence_words, rule_reasons, verdict_words, verdicts


def explain_file(config: Path, mail: Path, as_json: bool = False) -> dict | str:
    """The facts (for --json) or the text; an InputError when the file is missing, unreadable or no mail."""
    data = read_mail(mail)
    return explain_mail(load_settings(config), data, f"file:{mail}", as_json)


def explain_mail(settings: Settings, data: bytes, source: str, as_json: bool = False) -> dict | str:
    """explain_file's answer for a mail's bytes (checked with parse.not_a_mail first) under the rules in force;
    `source` names it as a source key does."""
    policy = load_policy(settings)
    processed = decide(parse(RawMail(source, data)), policy, Identity.of(settings))
    facts = _facts(processed, policy)
    return facts if as_json else _as_text(facts, processed, policy)


def _facts(processed: Processed, policy: Policy) -> dict:
    inbound, classification, decision = processed.inbound, processed.classification, processed.decision
    review = policy.rules.review
    facts = {
        "message_id": inbound.message_id,
        "from": str(inbound.from_) if inbound.from_ else "",
        "subject": inbound.subject,
        "sha256": inbound.sha256,
        "parse_problems": list(inbound.parse_problems),
        "kind": None, "sender": None, "level": None, "country": None, "region": None, "language": None,
        "domain": None, "host": None, "confidence": None, "evidence": [],
        "review_below": review.below if review else None,
        "action": str(decision.action),
        "route": decision.route,
        "rule": decision.rule,
        "reason": decision.reason,
        "rules_version": decision.rules_version,
        "rules": [],
        "acknowledgement": _acknowledgement(processed),
    }
    if classification is not None:
        facts.update(
            kind=str(classification.kind), sender=str(classification.sender),
            level=str(classification.level) if classification.level else None,
            country=classification.country, region=classification.region, language=classification.language,
            domain=classification.domain, host=classification.host, confidence=round(classification.confidence, 3),
            evidence=[{"field": e.field, "value": e.value, "signal": e.signal, "where": e.where,
                       "weight": e.weight} for e in classification.evidence],
            rules=[{"rule": rule.name, "matched": verdict != NO_MATCH, "decides": verdict == DECIDES,
                    "why": explain_rule(rule, inbound, classification)[1]}
                   for rule, verdict in verdicts(policy.rules, inbound, classification)],
        )
    return facts


def _acknowledgement(processed: Processed) -> dict:
    """Whether the applicant would be answered, to whom, and why (or why not)."""
    if not processed.ack_note:
        return {"send": False, "why": tr("Eingangsbestätigungen sind ausgeschaltet",
                                         "acknowledgements are switched off")}
    answer = processed.acknowledgement
    if answer is None:
        return {"send": False, "why": processed.ack_note}
    return {"send": True, "to": answer.recipients[0], "why": processed.ack_note,
            "unless": tr("diese Adresse bekam schon eine innerhalb der Frist aus [acknowledgements] days",
                         "this address was answered within the window in [acknowledgements] days")}


def _as_text(facts: dict, processed: Processed, policy: Policy) -> str:
    lines = [f"{tr('E-Mail:', 'Mail:'):14}{facts['from']}  \"{facts['subject']}\"",
             f"{'Message-ID:':14}{facts['message_id'] or tr('(keine)', '(none)')}"]
    lines += [f"{tr('Lesehinweis:', 'Parse note:'):14}{problem}" for problem in facts["parse_problems"]]
    if processed.classification is not None:
        lines += _classification_lines(facts, processed, policy) + _rule_lines(processed, policy)
    return "\n".join(lines + _decision_lines(facts) + _message_lines(processed))


def _classification_lines(facts: dict, processed: Processed, policy: Policy) -> list[str]:
    unknown = tr("unbekannt", "unknown")
    host = tr(f" (Rechner {facts['host']})", f" (host {facts['host']})") if facts["host"] else ""
    rows = [
        (tr("Art:", "Kind:"), facts["kind"]),
        (tr("Absenderart:", "Sender:"), facts["sender"] + (f" ({facts['level']})" if facts["level"] else "")),
        (tr("Land:", "Country:"), facts["country"]),
        ("Region:", facts["region"] or unknown),
        ("Domain:", (facts["domain"] or tr("(keine)", "(none)")) + host),
        (tr("Sprache:", "Language:"), facts["language"] or unknown),
        (tr("Sicherheit:", "Confidence:"),
         confidence_words(processed.classification.confidence, policy.rules, processed.decision)),
    ]
    lines = [f"{label:14}{value}" for label, value in rows] + [tr("Belege:", "Evidence:")]
    return lines + [f"  {e['field']:8} {e['value']:22} {e['weight']:+.2f}  {e['signal']}  [{e['where']}]"
                    for e in facts["evidence"]]


def _rule_lines(processed: Processed, policy: Policy) -> list[str]:
    """Each rule with its verdict under "first match wins" and, in plain words, on what."""
    inbound, classification = processed.inbound, processed.classification
    lines = [tr("Regeln (von oben nach unten; die erste zutreffende entscheidet):",
                "Rules (top to bottom; the first that matches decides):")]
    found = verdicts(policy.rules, inbound, classification)
    for rule, verdict in found:
        lines.append(f"  {verdict_words(verdict)}: {rule.name} -> {rule.desk or rule.action}")
        lines.append(f"      {rule_reasons(rule, inbound, classification)}")
    if all(verdict != DECIDES for _, verdict in found):
        default = policy.rules.default
        lines.append(tr(f"  keine Regel trifft zu: es gilt default -> {default.desk or default.action}",
                        f"  no rule matches: the default applies -> {default.desk or default.action}"))
    return lines


def _decision_lines(facts: dict) -> list[str]:
    action = {"forward": tr("weiterleiten", "forward"), "ignore": tr("nur archivieren", "ignore"),
              "quarantine": tr("in Quarantäne", "quarantine")}.get(facts["action"], facts["action"])
    reason = f": {facts['reason']}" if facts["reason"] else ""
    ack = facts["acknowledgement"]
    answer = tr(f"an {ack['to']}", f"sent to {ack['to']}") if ack["send"] else tr("keine", "none")
    unless = tr(f" (außer {ack['unless']})", f" (unless {ack['unless']})") if ack.get("unless") else ""
    return [f"{tr('Entscheidung:', 'Decision:'):14}{action} -> {facts['route']} "
            f"({tr('Regel', 'rule')} {facts['rule']}){reason}",
            f"{tr('Antwort:', 'Answer:'):14}{answer}: {ack['why']}{unless}"]


def _message_lines(processed: Processed) -> list[str]:
    """The summary the desk would get, and the answer the applicant would get."""
    lines = []
    if processed.forward is not None:
        summary = email.message_from_bytes(processed.forward.data, policy=email.policy.default)
        to = ", ".join(processed.forward.recipients)
        lines += ["", tr(f"Zusammenfassung an {to}:", f"Summary for {to}:"),
                  f"{tr('Betreff', 'Subject')}: {summary['Subject']}", "", summary.get_body(("plain",)).get_content()]
    if processed.acknowledgement is not None:
        answer = email.message_from_bytes(processed.acknowledgement.data, policy=email.policy.default)
        lines += ["", tr(f"Antwort an {answer['To']}:", f"Answer to {answer['To']}:"),
                  f"{tr('Betreff', 'Subject')}: {answer['Subject']}", "", answer.get_body(("plain",)).get_content()]
    return lines
