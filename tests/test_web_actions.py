"""The console's actions against a real state: the queues' release and drop, the rule trial, explain."""
from __future__ import annotations

import html
import io
import re
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest

from mailrelay.parse import not_a_mail
from tests.helpers import REPO
from tests.relaytest import (
    audit_events,
    forwards,
    mail_states,
    once,
    routing_with,
    without_crlf,
    write_config,
)
from tests.webtest import console_app, logged_in, web_config

MAILS = REPO / "mailrelay" / "demo" / "mails"
MINISTRY = (MAILS / "01-application-state-ministry.eml").read_bytes()  # desk-public, confidence 0.83
RESEARCH = (MAILS / "02-application-research-institute.eml").read_bytes()  # desk-experts (rule expert-germany)
ROUTING = REPO / "config" / "routing.toml"
HOSTILE_SUBJECT = '<script>alert("s")</script><img src=x onerror=alert(1)> & {{ 7*7 }}'


class _Page(HTMLParser):
    """The text of each row of one table (by id) and of one element (by id), as a browser would show it."""

    def __init__(self, html: str, table: str = "", element: str = ""):
        super().__init__()
        self.table, self.element = table, element
        self.rows: dict[str, list[str]] = {}
        self.text = ""
        self._depth = self._in_element = 0
        self._element_tag = ""
        self._row: list[str] | None = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table" and attrs.get("id") == self.table:
            self._depth = 1
        elif self._depth and tag == "tr" and "data-mail-id" in attrs:
            self._row = self.rows.setdefault(attrs["data-mail-id"], [])
        elif self._depth and tag == "td" and self._row is not None:
            self._row.append("")
        if self._in_element and tag == self._element_tag:
            self._in_element += 1
        elif self.element and attrs.get("id") == self.element:
            self._in_element, self._element_tag = 1, tag

    def handle_endtag(self, tag):
        if tag == "table":
            self._depth = 0
        if tag == "tr":
            self._row = None
        if self._in_element and tag == self._element_tag:
            self._in_element -= 1

    def handle_data(self, data):
        if self._row:
            self._row[-1] += data
        if self._in_element:
            self.text += data




def _client(config):
    client = console_app(config).test_client()
    return client, logged_in(client)


def _events(directory, name: str) -> list[dict]:
    return [detail for _, event, detail in audit_events(directory) if event == name]


def _queue(client, path: str) -> dict[str, list[str]]:
    page = client.get(path)
    assert page.status_code == 200
    return _Page(page.text, table="queue").rows


def _flashes(page) -> list[str]:
    """The messages shown above the page (flashed by the action before the redirect), as text."""
    return [html.unescape(flash) for flash in re.findall(r'<p class="flash">(.*?)</p>', page.text, re.DOTALL)]


def _post(client, path: str, token: str, **fields):
    """A form post as the page sends it; the answer is the redirect back (PRG), followed."""
    answer = client.post(path, data=dict(fields, csrf_token=token))
    assert answer.status_code == 302 and answer.headers["Location"] == path.rsplit("/", 2)[0]
    return client.get(answer.headers["Location"])


@pytest.fixture
def refused_once(tmp_path, dovecot, imap_user, smtp_sink):
    """A config whose SMTP server refused the research institute's application: it waits in quarantine."""
    config = write_config(tmp_path, dovecot, imap_user, smtp_sink)
    dovecot.append(imap_user, "INBOX", RESEARCH)
    smtp_sink.reject_next(1, code=554)
    assert once(config) == 0
    return config


def test_release_from_the_page_is_recorded_for_the_editor_and_the_next_poll_forwards_it(
        tmp_path, refused_once, dovecot, imap_user, smtp_sink):
    """Released by the rules from the quarantine page, the mail leaves the list, the request names anna as the
    command's does, nothing is sent until the next poll, which forwards it and records anna in the audit trail."""
    client, token = _client(refused_once)
    [(mail_id, cells)] = _queue(client, "/quarantaene").items()
    assert "t.lindner@hs-example.de" in cells[2] and "EU cluster expert group" in cells[3]
    page = _post(client, f"/quarantaene/{mail_id}/freigeben", token, desk="")
    assert any("freigegeben" in flash and "desk-experts" in flash for flash in _flashes(page))
    assert mail_id not in _Page(page.text, table="queue").rows
    [requested] = _events(tmp_path, "queue.release_requested")
    assert (requested["by"], requested["queue"], requested["would"]) == ("anna", "quarantine", "desk-experts")
    assert forwards(smtp_sink) == []
    assert once(refused_once) == 0
    assert [received.rcpt_tos for received in forwards(smtp_sink)] == [("desk-experts@bmwi.example",)]
    assert [detail["by"] for detail in _events(tmp_path, "queue.released")] == ["anna"]
    assert [detail.get("released_by") for detail in _events(tmp_path, "mail.sending")] == [None, "anna"]
    assert [without_crlf(m) for m in dovecot.messages(imap_user, "Processed")] == [without_crlf(RESEARCH)]


def test_a_release_the_rules_would_hold_again_is_refused_in_german_then_goes_to_the_chosen_desk(
        tmp_path, dovecot, imap_user, smtp_sink):
    """Without a desk the release of a mail the rules in force quarantine is refused with the reason, in the
    page's words (no command-line options), and nothing is recorded; with a desk chosen the poll sends it there."""
    config = write_config(tmp_path, dovecot, imap_user, smtp_sink, rules=routing_with(tmp_path, "niedersachsen.de"))
    dovecot.append(imap_user, "INBOX", MINISTRY)
    assert once(config) == 0
    client, token = _client(config)
    [mail_id] = _queue(client, "/quarantaene")
    [refusal] = _flashes(_post(client, f"/quarantaene/{mail_id}/freigeben", token, desk=""))
    assert "wieder in Quarantäne" in refusal and "von Hand prüfen" in refusal and "--" not in refusal
    assert _events(tmp_path, "queue.release_requested") == [] and mail_id in _queue(client, "/quarantaene")
    [unknown] = _flashes(_post(client, f"/quarantaene/{mail_id}/freigeben", token, desk="desk-nowhere"))
    assert "kein Referat 'desk-nowhere'" in unknown
    _post(client, f"/quarantaene/{mail_id}/freigeben", token, desk="desk-public")
    assert once(config) == 0
    assert [received.rcpt_tos for received in forwards(smtp_sink)] == [("desk-public@bmwi.example",)]
    assert [(d["by"], d["desk"]) for d in _events(tmp_path, "queue.released")] == [("anna", "desk-public")]


def test_drop_needs_a_reason_and_is_carried_out_by_the_next_poll(tmp_path, refused_once, dovecot, imap_user,
                                                                 smtp_sink):
    """A drop without a reason is refused; with one it is recorded for anna and the next poll moves the copy
    to the ignored mailbox without sending anything."""
    client, token = _client(refused_once)
    [mail_id] = _queue(client, "/quarantaene")
    [refusal] = _flashes(_post(client, f"/quarantaene/{mail_id}/verwerfen", token, reason="  "))
    assert "Grund" in refusal and _events(tmp_path, "queue.drop_requested") == []
    [done] = _flashes(_post(client, f"/quarantaene/{mail_id}/verwerfen", token, reason="Dublette, schon beantwortet"))
    assert "verworfen" in done and _queue(client, "/quarantaene") == {}
    assert once(refused_once) == 0
    assert forwards(smtp_sink) == [] and [state for state, _, _ in mail_states(tmp_path)] == ["ignored"]
    assert [without_crlf(m) for m in dovecot.messages(imap_user, "Ignored")] == [without_crlf(RESEARCH)]
    [dropped] = _events(tmp_path, "queue.dropped")
    assert (dropped["by"], dropped["reason"]) == ("anna", "Dublette, schon beantwortet")


def test_a_review_release_needs_a_desk_and_done_needs_no_reason(tmp_path, dovecot, imap_user, smtp_sink):
    """On the review page a release without a desk is refused and nothing recorded; with one the poll sends it
    on; "erledigt" without a reason takes a mail out of the list as the command's drop does."""
    config = write_config(tmp_path, dovecot, imap_user, smtp_sink, rules=routing_with(tmp_path, review_below=0.9))
    for mail in (MINISTRY, RESEARCH):
        dovecot.append(imap_user, "INBOX", mail)
    assert once(config) == 0 and len(forwards(smtp_sink)) == 2
    client, token = _client(config)
    first, second = _queue(client, "/pruefung")
    [refusal] = _flashes(_post(client, f"/pruefung/{first}/freigeben", token, desk=""))
    assert "Referat" in refusal and "--" not in refusal and _events(tmp_path, "queue.release_requested") == []
    _post(client, f"/pruefung/{first}/freigeben", token, desk="desk-public")
    assert [d["by"] for d in _events(tmp_path, "queue.release_requested")] == ["anna"]
    [done] = _flashes(_post(client, f"/pruefung/{second}/erledigt", token, reason=""))
    assert "erledigt" in done and _queue(client, "/pruefung") == {}
    assert [(d["by"], d["reason"]) for d in _events(tmp_path, "queue.dropped")] == [("anna", "erledigt")]
    assert once(config) == 0
    assert forwards(smtp_sink)[-1].rcpt_tos == ("desk-public@bmwi.example",) and len(forwards(smtp_sink)) == 3


def test_a_hostile_subject_is_shown_as_text_in_the_queue(tmp_path, dovecot, imap_user, smtp_sink):
    """Markup and template syntax in a subject reach the page escaped: the browser shows them, runs nothing."""
    hostile = RESEARCH.replace(b"Subject: Information: application for the EU cluster expert group",
                               b"Subject: " + HOSTILE_SUBJECT.encode())
    assert hostile != RESEARCH
    config = write_config(tmp_path, dovecot, imap_user, smtp_sink)
    dovecot.append(imap_user, "INBOX", hostile)
    smtp_sink.reject_next(1, code=554)
    assert once(config) == 0
    client, _ = _client(config)
    page = client.get("/quarantaene").text
    [cells] = _Page(page, table="queue").rows.values()
    assert cells[3].strip() == HOSTILE_SUBJECT  # the parser unescapes: what the editor reads
    assert "<script>" not in page and "<img" not in page and "&lt;script&gt;" in page and "{{ 7*7 }}" in page


def _trial(client, token, text: str | None = None, upload: bytes | None = None):
    fields = {"csrf_token": token}
    if upload is not None:
        fields["file"] = (io.BytesIO(upload), "routing.toml")
    else:
        fields["routing"] = text
    return client.post("/regel", data=fields, content_type="multipart/form-data")


def _trial_folders() -> set[str]:
    return {path.name for path in Path(tempfile.gettempdir()).glob("mailrelay-trial-*")}


@pytest.mark.parametrize("how", ["pasted", "uploaded"])
def test_a_broken_routing_text_lists_its_problem_with_the_line_and_no_temporary_path(tmp_path, how):
    """A rule naming an undeclared desk is reported at its line of the text as given, the file called "Ihre
    Fassung", the temporary folder neither shown nor left behind, and nothing replayed."""
    config = web_config(tmp_path)
    lines = ROUTING.read_text(encoding="utf-8").splitlines()
    broken_line = lines.index('desk = "desk-experts"') + 1
    lines[broken_line - 1] = 'desk = "desk-expert"'
    text = "\r\n".join(lines) + "\r\n"  # as a browser sends a text field
    before = _trial_folders()
    client, token = _client(config)
    page = _trial(client, token, text=text) if how == "pasted" else _trial(client, token, upload=text.encode())
    assert page.status_code == 200
    problems = _Page(page.text, element="problems").text
    assert f"Ihre Fassung, Zeile {broken_line}:" in problems and "desk-expert" in problems
    assert "mailrelay-trial" not in page.text and tempfile.gettempdir() + "/" not in page.text
    assert 'id="diff"' not in page.text and _trial_folders() == before


@pytest.fixture
def relayed_research(tmp_path, dovecot, imap_user, smtp_sink):
    """A config whose relay forwarded the research institute's application to desk-experts."""
    config = write_config(tmp_path, dovecot, imap_user, smtp_sink)
    dovecot.append(imap_user, "INBOX", RESEARCH)
    assert once(config) == 0 and mail_states(tmp_path) == [("forwarded", "desk-experts", "Processed")]
    return config


def test_a_changed_rule_shows_the_changed_route_and_applies_nothing(tmp_path, relayed_research):
    """Sending the experts' applications to desk-public shows the forwarded mail in #diff, before desk-experts,
    after desk-public; config/routing.toml and the folder it lies in are as they were."""
    config_folder = sorted(path.name for path in ROUTING.parent.iterdir())
    shipped = ROUTING.read_bytes()
    changed = shipped.decode("utf-8").replace("[[rules]]", '[[rules]]\nname = "hs-to-public"\nwhen = { domain = '
                                              '"hs-example.de" }\ndesk = "desk-public"\n\n[[rules]]', 1)
    assert changed != shipped.decode("utf-8")
    client, token = _client(relayed_research)
    page = _trial(client, token, text=changed)
    assert _Page(page.text, element="problems").text.strip() == ""
    [(mail_id, (mail, before, after))] = _Page(page.text, table="diff").rows.items()
    assert "t.lindner@hs-example.de" in mail and "EU cluster expert group" in mail
    assert before.split() == ["desk-experts", "(Regel", "expert-germany)"]
    assert after.split() == ["desk-public", "(Regel", "hs-to-public)"] and mail_id == "1"
    assert ROUTING.read_bytes() == shipped and sorted(p.name for p in ROUTING.parent.iterdir()) == config_folder
    assert client.get("/regel").text.count("desk-experts") == shipped.decode("utf-8").count("desk-experts")
    unchanged = _trial(client, token, text=shipped.decode("utf-8"))
    assert 'id="diff"' not in unchanged.text and "Keine der 1 Mails" in unchanged.text


def test_explain_of_a_demo_mail_shows_its_desk(tmp_path):
    """An uploaded application is explained as `explain` does: the rule and the desk it goes to."""
    client, token = _client(web_config(tmp_path))
    page = client.post("/mail-pruefen", data={"eml": (io.BytesIO(RESEARCH), "mail.eml"), "csrf_token": token})
    assert page.status_code == 200
    explained = _Page(page.text, element="explain").text
    assert "Entscheidung:" in explained and "-> desk-experts (Regel expert-germany)" in explained


def test_explain_escapes_the_mail_and_says_when_it_is_no_mail(tmp_path):
    """A hostile subject is shown as text in the explanation; a file that is no mail is said to be none."""
    client, token = _client(web_config(tmp_path))
    hostile = RESEARCH.replace(b"Information: application for the EU cluster expert group", HOSTILE_SUBJECT.encode())
    page = client.post("/mail-pruefen", data={"eml": (io.BytesIO(hostile), "mail.eml"), "csrf_token": token})
    assert HOSTILE_SUBJECT in _Page(page.text, element="explain").text and "<script>" not in page.text
    garbage = b"\x00\x01 not a mail at all"
    assert not_a_mail(garbage)
    page = client.post("/mail-pruefen", data={"eml": (io.BytesIO(garbage), "x.eml"), "csrf_token": token})
    assert "keine E-Mail" in _Page(page.text, element="explain").text


def test_an_upload_over_the_limit_gets_413_with_a_german_page(tmp_path):
    """A mail larger than [web] max_upload_kb is refused before it is read, with the limit in German."""
    client, token = _client(web_config(tmp_path, "max_upload_kb = 2\n"))
    small = client.post("/mail-pruefen", data={"eml": (io.BytesIO(RESEARCH), "mail.eml"), "csrf_token": token})
    assert small.status_code == 200
    large = RESEARCH + b"\n" + b"Viel Text. " * 250
    page = client.post("/mail-pruefen", data={"eml": (io.BytesIO(large), "mail.eml"), "csrf_token": token})
    assert page.status_code == 413
    assert "zu groß" in page.text and "höchstens 2 KB" in page.text and 'lang="de"' in page.text
    assert 'id="explain"' not in page.text
