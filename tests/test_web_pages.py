"""The console's overview, history and mail pages over a state the relay wrote: the demo mails and one
hostile mail relayed through the test Dovecot and SMTP sink, read back through Flask's test client."""
from __future__ import annotations

import email
import email.policy
import html
import re
import shutil
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from email.message import EmailMessage
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from mailrelay.web import chart, history
from tests.helpers import REPO
from tests.relaytest import closed_port, once, query_state, write_config
from tests.webtest import console_app, logged_in

MAILS = REPO / "mailrelay" / "demo" / "mails"
SCRIPT_SUBJECT = "<script>alert(1)</script>"
IMG_NAME = "<img src=x onerror=alert(1)>"
HOSTILE_ATTACHMENT = "<svg onload=alert(1)>.pdf"
HOSTILE_SENDER = "evil.sender@example.org"


def hostile_mail() -> bytes:
    """An inquiry whose subject, display name, text and attachment name are markup."""
    message = EmailMessage()
    message["From"] = f'"{IMG_NAME}" <{HOSTILE_SENDER}>'
    message["To"] = "redaktion@clusterplattform.example"
    message["Subject"] = SCRIPT_SUBJECT
    message["Message-ID"] = "<hostile-web-1@example.org>"
    message["Date"] = "Mon, 30 Nov 2026 10:00:00 +0100"
    message.set_content("Guten Tag,\n\nwie bewerbe ich mich? </pre><script>alert(2)</script>\n")
    message.add_attachment(b"%PDF-1.4\n", maintype="application", subtype="pdf", filename=HOSTILE_ATTACHMENT)
    return message.as_bytes()


@dataclass(frozen=True)
class Relayed:
    """A state written by one real poll, the console over it, and what the servers saw."""

    folder: Path
    config: Path
    client: FlaskClient
    sink: object
    dovecot: object
    user: str

    def mail_id(self, message_id: str) -> int:
        rows = query_state(self.folder, f"SELECT id FROM mails WHERE message_id = '{message_id}'")
        assert len(rows) == 1, rows
        return rows[0][0]

    def get(self, url: str) -> tuple[int, str]:
        response = self.client.get(url)
        return response.status_code, response.get_data(as_text=True)


@pytest.fixture
def relayed(tmp_path: Path, dovecot, imap_user: str, smtp_sink, monkeypatch) -> Relayed:
    """The six demo mails and the hostile one, relayed once; a console client logged in as anna."""
    rules = tmp_path / "routing.toml"
    shutil.copy(REPO / "config" / "routing.toml", rules)  # a copy, so a test can change the rules in force
    for path in sorted(MAILS.glob("*.eml")):
        dovecot.append(imap_user, "INBOX", path.read_bytes())
    dovecot.append(imap_user, "INBOX", hostile_mail())
    config = write_config(tmp_path, dovecot, imap_user, smtp_sink, rules=rules)
    assert once(config) == 0
    client = console_app(config).test_client()
    logged_in(client)
    return Relayed(tmp_path, config, client, smtp_sink, dovecot, imap_user)


def results(page: str) -> list[int]:
    """The mail numbers of the rows of <table id="results">, in order."""
    table = re.search(r'<table id="results">(.*?)</table>', page, re.DOTALL)
    assert table, "no results table"
    return [int(number) for number in re.findall(r'data-mail-id="(\d+)"', table.group(1))]


def element(page: str, element_id: str) -> str:
    """The text inside the element with `element_id`, markup removed and entities decoded."""
    found = re.search(rf'<(\w+)[^>]* id="{element_id}"[^>]*>(.*?)</\1>', page, re.DOTALL)
    assert found, f"no element #{element_id}"
    return html.unescape(re.sub(r"<[^>]+>", "", found.group(2))).strip()


def summary_sent_for(relayed: Relayed, mail_id: int) -> str:
    """The plain-text summary the desk's mailbox got for a mail (found by its forward's Message-ID)."""
    forward_id = query_state(relayed.folder, f"SELECT forward_message_id FROM mails WHERE id = {mail_id}")[0][0]
    for received in relayed.sink.received:
        message = email.message_from_bytes(received.data, policy=email.policy.default)
        if message["Message-ID"] == forward_id:
            return message.get_body(("plain",)).get_content()
    raise AssertionError(f"the sink got no summary {forward_id}")


def today() -> str:
    return datetime.now(timezone.utc).astimezone().date().isoformat()


# the overview


def test_overview_shows_the_verdict_and_todays_bars_as_the_servers_saw_them(relayed: Relayed) -> None:
    """After a good poll the overview says healthy, and today's bars count the summaries the SMTP server
    received and the mails moved to the Ignored mailbox, drawn as SVG without script."""
    status, page = relayed.get("/")
    assert status == 200
    assert element(page, "verdict") == "mailrelay: gesund"
    desks = query_state(relayed.folder, "SELECT DISTINCT route FROM mails WHERE state = 'forwarded'")
    summaries = [received for received in relayed.sink.received
                 if any(f".{desk}@".encode() in received.data.split(b"\r\n\r\n")[0] for (desk,) in desks)]
    ignored = relayed.dovecot.messages(relayed.user, "Ignored")
    assert summaries and ignored
    assert "<svg" in page and "<script" not in page
    assert f'data-day="{today()}" data-series="forwarded" data-count="{len(summaries)}"' in page
    assert f'data-day="{today()}" data-series="ignored" data-count="{len(ignored)}"' in page
    assert "Redaktion Clusterplattform" in element(page, "chart-desk")  # desks under the names they go by


def test_overview_says_so_when_polls_fail(relayed: Relayed) -> None:
    """A poll that cannot reach the mailbox turns the verdict to degraded, with the error as its reason."""
    write_config(relayed.folder, relayed.dovecot, relayed.user, relayed.sink, imap_port=closed_port(),
                 rules=relayed.folder / "routing.toml")
    assert once(relayed.config) != 0
    status, page = relayed.get("/")
    assert status == 200
    assert element(page, "verdict") == "mailrelay: beeinträchtigt"
    assert "Abfragen scheitern seit" in element(page, "health-problems")
    assert "Abfragen scheitern seit" in element(page, "polls")


def test_overview_without_a_state_says_so_in_german(tmp_path: Path, dovecot, imap_user: str, smtp_sink) -> None:
    """Before the relay ever ran, the overview says there is no state file yet instead of failing."""
    client = console_app(write_config(tmp_path, dovecot, imap_user, smtp_sink)).test_client()
    logged_in(client)
    response = client.get("/")
    assert response.status_code == 503
    assert "es gibt noch keine Zustandsdatei" in response.get_data(as_text=True)


def test_chart_stacks_each_days_mails_and_leaves_out_older_ones() -> None:
    """Bars stack by outcome in the order of the legend, heights in proportion; a mail older than the
    thirty days shown is not counted."""
    days = chart.last_days(date(2026, 11, 30))
    noon = "2026-11-30T11:00:00.000+00:00"
    mails = [{"first_seen": noon, "state": "forwarded", "route": "editors"}] * 3 + \
            [{"first_seen": noon, "state": "retry", "route": "editors"},
             {"first_seen": "2026-10-01T11:00:00.000+00:00", "state": "ignored", "route": None}]
    drawn = chart.by_outcome(mails, days)
    assert [(bar.series, bar.count) for bar in drawn.bars] == [("forwarded", 3), ("other", 1)]
    forwarded, other = drawn.bars
    assert forwarded.height == pytest.approx(3 * other.height, abs=0.2)
    assert other.y + other.height == pytest.approx(forwarded.y, abs=0.1)  # on top of it
    assert [item.total for item in drawn.series] == [3, 0, 0, 1]


# the history


def test_history_sender_filter_finds_exactly_the_hostile_mail(relayed: Relayed) -> None:
    """A part of the sender's address, in any case, finds that one mail and no other."""
    hostile = relayed.mail_id("<hostile-web-1@example.org>")
    status, page = relayed.get("/verlauf?sender=EVIL.Sender")
    assert status == 200
    assert results(page) == [hostile]
    assert "1 Mail;" in element(page, "count")


def test_history_lists_newest_first_and_filters_by_outcome_desk_kind_and_date(relayed: Relayed) -> None:
    """Every mail, newest first; outcome, desk, kind, subject and the dates each narrow the list as the
    state has it."""
    every = [row[0] for row in query_state(relayed.folder, "SELECT id FROM mails ORDER BY id DESC")]
    assert results(relayed.get("/verlauf")[1]) == every
    ignored = [row[0] for row in query_state(relayed.folder, "SELECT id FROM mails WHERE state = 'ignored'"
                                                             " ORDER BY id DESC")]
    assert ignored and results(relayed.get("/verlauf?outcome=ignored")[1]) == ignored
    public = relayed.mail_id("<demo-01@wirtschaft.niedersachsen.de>")
    assert public in results(relayed.get("/verlauf?desk=desk-public")[1])
    assert relayed.mail_id("<demo-04@landkreis-example.de>") not in results(relayed.get("/verlauf?desk=desk-public")[1])
    assert results(relayed.get("/verlauf?kind=inquiry&subject=SCRIPT")[1]) == [relayed.mail_id("<hostile-web-1@example.org>")]
    yesterday = (date.fromisoformat(today()) - timedelta(days=1)).isoformat()
    assert results(relayed.get(f"/verlauf?until={yesterday}")[1]) == []
    assert results(relayed.get(f"/verlauf?since={today()}&until={today()}")[1]) == every


def test_history_refuses_a_date_it_cannot_read(relayed: Relayed) -> None:
    """A date not written YYYY-MM-DD is named as the problem; no list pretends the filter held."""
    status, page = relayed.get("/verlauf?since=28.11.2026")
    assert status == 200
    assert "JJJJ-MM-TT" in element(page, "problems")
    assert results(page) == []


def test_history_pages_keep_the_filters(relayed: Relayed, monkeypatch) -> None:
    """Beyond a page's worth the list goes on on the next page, and its link keeps the filters, nothing else."""
    monkeypatch.setattr(history, "PAGE_SIZE", 2)
    every = [row[0] for row in query_state(relayed.folder, "SELECT id FROM mails WHERE state = 'forwarded'"
                                                           " ORDER BY id DESC")]
    first = relayed.get("/verlauf?outcome=forwarded&_external=1&_scheme=javascript")[1]
    assert results(first) == every[:2]
    following = re.search(r'<a rel="next" href="([^"]+)"', first).group(1)
    assert html.unescape(following) in ("/verlauf?seite=2&outcome=forwarded", "/verlauf?outcome=forwarded&seite=2")
    assert results(relayed.get(html.unescape(following))[1]) == every[2:4]


# one mail


def test_hostile_mail_is_shown_as_text_on_every_page(relayed: Relayed) -> None:
    """The subject, display name, text and attachment name of a hostile mail appear escaped, never as markup."""
    hostile = relayed.mail_id("<hostile-web-1@example.org>")
    pages = {url: relayed.get(url)[1] for url in ("/", "/verlauf", f"/verlauf?sender={HOSTILE_SENDER}",
                                                  f"/mail/{hostile}")}
    for url, page in pages.items():
        for markup in (SCRIPT_SUBJECT, IMG_NAME, "<script>alert(2)", "<svg onload"):
            assert markup not in page, f"{markup} unescaped on {url}"
    assert html.escape(SCRIPT_SUBJECT, quote=False) in pages["/verlauf"]
    mail_page = pages[f"/mail/{hostile}"]
    assert element(mail_page, "subject") == SCRIPT_SUBJECT
    assert element(mail_page, "from") == f"{IMG_NAME} <{HOSTILE_SENDER}>"
    assert HOSTILE_ATTACHMENT in element(mail_page, "attachments")
    assert "</pre><script>alert(2)</script>" in element(mail_page, "summary-text")


def test_mail_page_tells_the_rule_the_desk_and_the_whole_story(relayed: Relayed) -> None:
    """The ministry's application: the rule that decided, its desk, the reasons in German, every event
    in order with the SMTP server's reply, and the summary shown as made again, matching what was sent."""
    mail_id = relayed.mail_id("<demo-01@wirtschaft.niedersachsen.de>")
    rule, route = query_state(relayed.folder, f"SELECT rule, route FROM mails WHERE id = {mail_id}")[0]
    status, page = relayed.get(f"/mail/{mail_id}")
    assert status == 200
    assert element(page, "rule") == rule == "public-body-germany"
    assert route in element(page, "desk") and "öffentliche Stellen" in element(page, "desk")
    assert "Verzeichniseintrag „Land Niedersachsen“" in element(page, "reasons")
    events = [event for (event,) in query_state(relayed.folder,
                                                f"SELECT event FROM events WHERE mail_id = {mail_id} ORDER BY id")]
    assert re.findall(r'data-event="([^"]+)"', page) == events
    assert "250" in element(page, "events") and "weitergeleitet" in element(page, "events")
    assert "Neu erzeugt, nicht die gesendete Mail" in element(page, "rendered-again")
    assert "sollte dem gesendeten entsprechen" in element(page, "rendered-again")
    assert element(page, "summary-text") == summary_sent_for(relayed, mail_id).replace("\r\n", "\n").strip()


def test_mail_page_says_the_rules_changed_since_the_summary_went_out(relayed: Relayed) -> None:
    """Once the editors' files changed, the summary made again says it may differ from what was sent."""
    with (relayed.folder / "routing.toml").open("a", encoding="utf-8") as rules:
        rules.write("\n# geändert nach der Weiterleitung\n")
    mail_id = relayed.mail_id("<demo-01@wirtschaft.niedersachsen.de>")
    page = relayed.get(f"/mail/{mail_id}")[1]
    assert "kann hiervon abweichen" in element(page, "rendered-again")
    assert "sollte dem gesendeten entsprechen" not in page


def test_mail_page_without_the_original_shows_what_the_trail_knows(relayed: Relayed) -> None:
    """With the raw bytes purged, the page still names the desk, recipients and reply, and says plainly
    that the summary cannot be made again."""
    mail_id = relayed.mail_id("<demo-01@wirtschaft.niedersachsen.de>")
    query_state(relayed.folder, "DELETE FROM raw_mails")
    page = relayed.get(f"/mail/{mail_id}")[1]
    assert "nicht mehr aufbewahrt" in element(page, "summary")
    assert "desk-public" in element(page, "summary-desk")
    assert "summary-text" not in page
    assert element(page, "from") == "sabine.albrecht@wirtschaft.niedersachsen.de"


def test_mail_page_of_an_ignored_mail_has_no_summary(relayed: Relayed) -> None:
    """An auto-reply was only archived: its page says no desk got a summary, and why it was not forwarded."""
    mail_id = relayed.mail_id("<demo-04@landkreis-example.de>")
    page = relayed.get(f"/mail/{mail_id}")[1]
    assert "an kein Referat weitergeleitet" in element(page, "summary")
    assert element(page, "desk") == "an kein Referat"
    assert "Automatische Antwort" in element(page, "decision")


def test_unknown_mail_number_is_a_german_not_found(relayed: Relayed) -> None:
    """A number the relay never gave out: 404 with a sentence, not a traceback."""
    status, page = relayed.get("/mail/999999")
    assert status == 404
    assert "keine Mail mit der Nummer 999999" in page
