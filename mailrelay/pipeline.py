"""The stage order for one mail: parse, loop guard, classify, route, render. No I/O."""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from mailrelay import acknowledge
from mailrelay.authres import server_report
from mailrelay.classify import classify
from mailrelay.config import Settings
from mailrelay.model import Action, Decision, Inbound, Processed
from mailrelay.policy import Policy
from mailrelay.render import LOOP_HEADER, render, render_acknowledgement
from mailrelay.route import route


@dataclass(frozen=True)
class Identity:
    """Who the relay is, to recognise its own mail coming back."""

    from_address: str
    relay_id: str
    authserv_id: str = ""  # our receiving server's name in Authentication-Results; "" trusts none

    @classmethod
    def of(cls, settings: Settings) -> "Identity":
        return cls(settings.from_address, settings.relay_id, settings.authserv_id)


def judge(inbound: Inbound, policy: Policy, identity: Identity) -> Processed:
    """Classify and route an already parsed mail; nothing rendered yet."""
    loop = loop_guard(inbound, identity)
    if loop is not None:
        return Processed(inbound, None, dataclasses.replace(loop, rules_version=policy.version))
    server = server_report(inbound, identity.authserv_id)
    classification = dataclasses.replace(classify(inbound, policy.signals, server, policy.reference),
                                         unauthenticated=server.failed_checks)
    decision = dataclasses.replace(route(inbound, classification, policy.rules), rules_version=policy.version)
    return Processed(inbound, classification, decision)


def decide(inbound: Inbound, policy: Policy, identity: Identity) -> Processed:
    """Classify, route and, for a forward, render the summary."""
    judged = judge(inbound, policy, identity)
    decision, classification = judged.decision, judged.classification
    if decision.action is not Action.FORWARD:
        return judged
    desk = policy.rules.desks[decision.desk]
    forward = render(inbound, classification, decision, desk, policy.templates,
                     identity.from_address, identity.relay_id)
    answer = acknowledge.plan(inbound, classification, decision, policy.rules, identity.from_address)
    if answer is None:
        return Processed(inbound, classification, decision, forward)
    acknowledgement = None
    if answer.send:
        acknowledgement = render_acknowledgement(inbound, answer.to, answer.template,
                                                 None if answer.template.startswith("abroad.") else desk,
                                                 policy.templates, identity.from_address, identity.relay_id)
    return Processed(inbound, classification, decision, forward, acknowledgement, answer.reason)


def loop_guard(inbound: Inbound, identity: Identity) -> Decision | None:
    """Mail that is ours, or answers ours, is never forwarded again."""
    if inbound.header(LOOP_HEADER) is not None:
        return Decision(Action.IGNORE, "loop-guard", reason=f"carries our {LOOP_HEADER} header")
    if inbound.from_ and inbound.from_.address == identity.from_address:
        return Decision(Action.IGNORE, "loop-guard", reason="sent from the relay's own address")
    domain = re.escape(identity.from_address.rpartition("@")[2])
    ours = re.compile(rf"<[0-9a-f]{{32}}\.[^@>\s]+@{domain}>", re.IGNORECASE)
    references = " ".join(inbound.header_values("in-reply-to") + inbound.header_values("references"))
    if ours.search(references):
        return Decision(Action.IGNORE, "loop-guard", reason="answers a summary or acknowledgement the relay sent")
    return None
