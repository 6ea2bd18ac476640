"""Hostile and broken mails: each ends in a terminal mailbox with an audit record; none stops the others."""
from __future__ import annotations

import email
import email.policy
import mailbox
import sqlite3

import pytest

from mailrelay.cli import main
from tests.helpers import DATA, REPO

DESK_ADDRESSES = {"desk-public@bmwi.example", "desk-experts@bmwi.example", "redaktion@clusterplattform.example"}
FINAL = {"forwarded", "ignored", "quarantined"}


def _deep_nesting(levels: int) -> bytes:
    head = b"From: a@example.org\r\nSubject: deep\r\nMessage-ID: <deep@example.org>\r\nMIME-Version: 1.0\r\n"
    opening = b"".join(b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i) for i in range(levels))
    closing = b"".join(b"\r\n--b%d--\r\n" % i for i in reversed(range(levels)))
    return head + opening + b"Content-Type: text/plain\r\n\r\nbottom\r\n" + closing


def _many_parts(count: int) -> bytes:
    head = (b"From: a@example.org\r\nSubject: parts\r\nMessage-ID: <parts@example.org>\r\nMIME-Version: 1.0\r\n"
            b'Content-Type: multipart/mixed; boundary="p"\r\n\r\n')
    part = b"--p\r\nContent-Type: text/plain\r\n\r\nx\r\n"
    return head + part * count + b"--p--\r\n"


def _huge_header(size: int) -> bytes:
    return (b"From: a@example.org\r\nSubject: huge\r\nMessage-ID: <huge@example.org>\r\nX-Filler: "
            + b"a" * size + b"\r\n\r\nbody\r\n")


GENERATED = {
    "generated-mime-nesting-3000-deep.eml": lambda: _deep_nesting(3000),
    "generated-20000-parts.eml": lambda: _many_parts(20000),
    "generated-1mb-header.eml": lambda: _huge_header(1024 * 1024),
}
FILES = sorted(path.name for path in DATA.glob("hostile-*.eml"))


@pytest.fixture(scope="module")
def relayed(tmp_path_factory):
    """All hostile mails, and one ordinary application after them, relayed in one poll from a Maildir."""
    work = tmp_path_factory.mktemp("hostile")
    inbox = mailbox.Maildir(work / "inbox", create=True)
    keys = {name: inbox.add((DATA / name).read_bytes()) for name in FILES}
    keys.update({name: inbox.add(make()) for name, make in GENERATED.items()})
    keys["ordinary"] = inbox.add((REPO / "mailrelay" / "demo" / "mails" / "02-application-research-institute.eml")
                                 .read_bytes())
    config = work / "mailrelay.toml"
    config.write_text(f'''rules = "{REPO / 'config' / 'routing.toml'}"
signals = "{REPO / 'config' / 'signals.toml'}"
templates = "{REPO / 'templates'}"
[maildir]
path = "inbox"
[outbox]
path = "outbox"
[relay]
from_address = "relay@clusterplattform.example"
''')
    assert main(["--config", str(config), "once"]) == 0
    with sqlite3.connect(work / "mailrelay.sqlite") as db:
        states = dict(db.execute("SELECT source_key, state || '/' || coalesce(archived_to, '') FROM mails"))
    return work, keys, states


@pytest.mark.parametrize("name", FILES + list(GENERATED))
def test_hostile_mail_ends_final_and_archived(relayed, name):
    """Each hostile mail has a final state and was moved out of the inbox."""
    work, keys, states = relayed
    state, _, archived_to = states[f"maildir:{keys[name]}"].partition("/")
    assert state in FINAL and archived_to


def test_the_mail_behind_the_hostile_ones_is_forwarded(relayed):
    """An ordinary application after all the hostile ones is still forwarded."""
    work, keys, states = relayed
    assert states[f"maildir:{keys['ordinary']}"] == "forwarded/Processed"
    assert list(mailbox.Maildir(work / "inbox").keys()) == []


def test_forwards_go_only_to_configured_desks_and_carry_no_injected_header(relayed):
    """Whatever the mails said, every forward is addressed to a configured desk only, with no Bcc or extra To."""
    work, _, _ = relayed
    for path in (work / "outbox").glob("*.eml"):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert {a.addr_spec for a in message["To"].addresses} <= DESK_ADDRESSES
        assert message["Bcc"] is None and message["Cc"] is None
        assert len(message.get_all("To")) == 1 and len(message.get_all("Reply-To") or []) <= 1
        reply_to = message["Reply-To"].addresses if message["Reply-To"] else ()
        assert all("evil.example" not in address.addr_spec for address in reply_to)


def test_script_and_template_syntax_stay_inert(relayed):
    """A mail's <script> and <img onerror> never reach the HTML summary, and its {{ 7*7 }} is not evaluated."""
    work, _, _ = relayed
    summaries = [email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
                 for p in (work / "outbox").glob("*.eml")]
    html = [m.get_body(("html",)).get_content() for m in summaries if "7*7" in m.get_body(("plain",)).get_content()]
    assert html and all("<script" not in h and "<img" not in h and "alert(1)" not in h for h in html)
    assert all("49" not in m.get_body(("plain",)).get_content().split("Nachricht")[1].split("---")[0]
               for m in summaries if "7*7" in m.get_body(("plain",)).get_content())


def test_undecodable_words_and_charsets_do_not_stop_a_forward(relayed):
    """Lying and unknown charsets and a broken encoded word are decoded with replacements and forwarded."""
    _, keys, states = relayed
    for name in ("hostile-charset-lying-latin1-as-utf8.eml", "hostile-charset-unknown.eml"):
        assert states[f"maildir:{keys[name]}"] == "forwarded/Processed", name


def test_a_mail_that_breaks_a_stage_is_quarantined_with_the_error_recorded(relayed):
    """The 3000-deep MIME nesting exceeds the parser's recursion: quarantined, the error in the audit trail."""
    work, keys, states = relayed
    key = f"maildir:{keys['generated-mime-nesting-3000-deep.eml']}"
    assert states[key] == "quarantined/Quarantine"
    with sqlite3.connect(work / "mailrelay.sqlite") as db:
        [detail] = db.execute("SELECT detail FROM events JOIN mails ON mails.id = events.mail_id"
                              " WHERE mails.source_key = ? AND event = 'mail.failed'", (key,)).fetchone()
    assert "RecursionError" in detail
