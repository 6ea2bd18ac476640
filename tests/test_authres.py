"""Authentication-Results: only our own server's topmost header is trusted, and failures mark the summary."""
from __future__ import annotations

import email
import email.policy

from mailrelay.authres import failed_checks
from mailrelay.model import RawMail
from mailrelay.parse import parse
from mailrelay.pipeline import Identity, decide
from mailrelay.policy import load_policy_files
from tests.helpers import REPO

OURS = "mx.clusterplattform.de"
BODY = (b"From: Petra Schmidt <p.schmidt@wirtschaft.sachsen.de>\r\nSubject: Bewerbung\r\nMessage-ID: <a@b.de>\r\n\r\n"
        b"Sehr geehrte Damen und Herren, ich habe mich fuer die Cluster-Expertengruppe beworben.\r\n"
        b"Mit freundlichen Gruessen\r\nPetra Schmidt\r\nSaechsisches Staatsministerium fuer Wirtschaft\r\n"
        b"01097 Dresden\r\nTel. +49 351 000000\r\n")


def _inbound(*results: bytes):
    return parse(RawMail("k", b"".join(b"Authentication-Results: " + r + b"\r\n" for r in results) + BODY))


def test_failures_reported_by_our_server_are_found():
    """Where DMARC was checked its failure is named; where it was not, failing SPF or DKIM are."""
    inbound = _inbound(b"mx.clusterplattform.de; spf=fail smtp.mailfrom=x; dkim=pass; dmarc=fail header.from=x")
    assert failed_checks(inbound, OURS) == ("dmarc=fail",)
    assert failed_checks(_inbound(b"mx.clusterplattform.de; spf=softfail; dkim=fail"), OURS) == (
        "spf=softfail", "dkim=fail")


def test_a_passing_result_is_no_failure():
    """All checks passing gives no failures."""
    assert failed_checks(_inbound(b"mx.clusterplattform.de; spf=pass; dkim=pass; dmarc=pass"), OURS) == ()


def test_a_header_from_another_server_is_not_trusted():
    """A failing (or passing) header under another authserv-id is ignored."""
    assert failed_checks(_inbound(b"mx.evil.example; dmarc=fail"), OURS) == ()


def test_a_forged_header_below_our_received_line_is_not_trusted():
    """A header the sender wrote (below our server's Received line) counts for nothing, pass or fail."""
    received = b"mx.clusterplattform.de; spf=none\r\nReceived: from x by mx.clusterplattform.de; Mon, 2 Mar 2026\r\n" \
               b"Authentication-Results: mx.clusterplattform.de; dmarc=pass"
    assert failed_checks(_inbound(received), OURS) == ()
    forged_fail = b"mx.clusterplattform.de; dmarc=pass\r\nReceived: from x by mx.clusterplattform.de; x\r\n" \
                  b"Authentication-Results: mx.clusterplattform.de; dmarc=fail"
    assert failed_checks(_inbound(forged_fail), OURS) == ()


def test_results_spread_over_several_headers_of_ours_are_all_read():
    """DKIM and DMARC results in separate headers from our server (opendkim, opendmarc) both count."""
    inbound = _inbound(b"MX.clusterplattform.de 1; dkim=pass", b"(filter) mx.clusterplattform.de; dmarc=fail")
    assert failed_checks(inbound, OURS) == ("dmarc=fail",)


def test_a_dmarc_pass_outweighs_a_failing_spf_or_dkim():
    """A forwarded mail whose SPF fails but whose DMARC passes is not marked."""
    inbound = _inbound(b"mx.clusterplattform.de; spf=fail; dkim=fail header.d=list.example; dmarc=pass")
    assert failed_checks(inbound, OURS) == ()


def test_without_a_configured_authserv_id_nothing_is_trusted():
    """With no authserv_id configured no header is read."""
    assert failed_checks(_inbound(b"mx.clusterplattform.de; dmarc=fail"), "") == ()


def test_the_summary_warns_the_desk_of_an_unauthenticated_sender():
    """A DMARC failure reported by our server puts a warning in the subject and the first lines."""
    policy = load_policy_files(REPO / "config" / "routing.toml", REPO / "config" / "signals.toml",
                               REPO / "templates")
    identity = Identity("relay@clusterplattform.example", "test", OURS)
    processed = decide(_inbound(b"mx.clusterplattform.de; dmarc=fail"), policy, identity)
    message = email.message_from_bytes(processed.forward.data, policy=email.policy.default)
    assert message["Subject"].startswith("[Absender nicht bestätigt]")
    assert message.get_body(("plain",)).get_content().startswith("ACHTUNG: Absender nicht bestätigt")
    assert processed.classification.unauthenticated == ("dmarc=fail",)
