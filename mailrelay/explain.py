"""What the relay would do with one mail file, and why; no network, nothing recorded."""
from __future__ import annotations

import email
import email.policy
from pathlib import Path

from mailrelay.config import load_settings
from mailrelay.model import Processed, RawMail
from mailrelay.parse import parse
from mailrelay.pipeline import Identity, decide
from mailrelay.policy import load_policy
from mailrelay.route import explain_rule


def explain_file(config: Path, mail: Path, as_json: bool = False) -> dict | str:
    settings = load_settings(config)
    policy = load_policy(settings)
    inbound = parse(RawMail(f"file:{mail}", mail.read_bytes()))
    processed = decide(inbound, policy, Identity.of(settings))
    facts = _facts(processed)
    if processed.classification is not None:
        facts["rules"] = [dict(zip(("rule", "matched", "why"),
                                   (rule.name, *explain_rule(rule, inbound, processed.classification))))
                          for rule in policy.rules.rules]
    if as_json:
        return facts
    return _as_text(facts, processed, policy)


def _facts(processed: Processed) -> dict:
    inbound, classification, decision = processed.inbound, processed.classification, processed.decision
    facts = {
        "message_id": inbound.message_id,
        "from": str(inbound.from_) if inbound.from_ else "",
        "subject": inbound.subject,
        "sha256": inbound.sha256,
        "parse_problems": list(inbound.parse_problems),
        "kind": None, "sender": None, "level": None, "country": None, "region": None, "language": None,
        "domain": None, "host": None, "confidence": None, "evidence": [],
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
        )
    return facts


def _acknowledgement(processed: Processed) -> dict:
    """Whether the applicant would be answered, to whom, and why (or why not)."""
    if not processed.ack_note:
        return {"send": False, "why": "acknowledgements are switched off"}
    answer = processed.acknowledgement
    if answer is None:
        return {"send": False, "why": processed.ack_note}
    return {"send": True, "to": answer.recipients[0], "why": processed.ack_note,
            "unless": "this address was answered within the window in [acknowledgements] days"}


def _as_text(facts: dict, processed: Processed, policy) -> str:
    lines = [
        f"Mail:        {facts['from']}  \"{facts['subject']}\"",
        f"Message-ID:  {facts['message_id'] or '(none)'}",
    ]
    lines += [f"Parse note:  {problem}" for problem in facts["parse_problems"]]
    if processed.classification is not None:
        lines += [
            f"Kind:        {facts['kind']}",
            f"Sender:      {facts['sender']}" + (f" ({facts['level']})" if facts["level"] else ""),
            f"Country:     {facts['country']}",
            f"Region:      {facts['region'] or 'unknown'}",
            f"Domain:      {facts['domain'] or '(none)'}" + (f" (host {facts['host']})" if facts["host"] else ""),
            f"Language:    {facts['language'] or 'unknown'}",
            f"Confidence:  {facts['confidence']}",
            "Evidence:",
        ]
        lines += [f"  {e['field']:8} {e['value']:22} {e['weight']:+.2f}  {e['signal']}  [{e['where']}]"
                  for e in facts["evidence"]]
        lines.append("Rules (first match wins):")
        for rule in policy.rules.rules:
            matched, why = explain_rule(rule, processed.inbound, processed.classification)
            lines.append(f"  {'MATCH' if matched else 'no':5}  {rule.name} -> {rule.desk or rule.action}  ({why})")
    lines.append(f"Decision:    {facts['action']} -> {facts['route']} (rule {facts['rule']})"
                 + (f": {facts['reason']}" if facts["reason"] else ""))
    ack = facts["acknowledgement"]
    lines.append(f"Answer:      {'sent to ' + ack['to'] if ack['send'] else 'none'}: {ack['why']}"
                 + (f" (unless {ack['unless']})" if ack.get("unless") else ""))
    if processed.forward is not None:
        summary = email.message_from_bytes(processed.forward.data, policy=email.policy.default)
        lines += ["", f"Summary for {', '.join(processed.forward.recipients)}:",
                  f"Subject: {summary['Subject']}", "", summary.get_body(("plain",)).get_content()]
    if processed.acknowledgement is not None:
        answer = email.message_from_bytes(processed.acknowledgement.data, policy=email.policy.default)
        lines += ["", f"Answer to {answer['To']}:", f"Subject: {answer['Subject']}", "",
                  answer.get_body(("plain",)).get_content()]
    return "\n".join(lines)
