"""The editors' journeys through the console in a real browser, over a state the relay built from the test servers."""
from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.browser import Console, Page, browser, page_for, screenshots, serve  # noqa: F401 (pytest fixtures)
from tests.helpers import REPO
from tests.relaytest import audit_events, forwards, once, query_state, write_config

MAILS = REPO / "mailrelay" / "demo" / "mails"
RESEARCH = MAILS / "02-application-research-institute.eml"  # desk-experts; quarantined here by an SMTP refusal
FORWARDED = [MAILS / name for name in ("01-application-state-ministry.eml",  # desk-public
                                       "03-inquiry-how-to-apply.eml",  # editors
                                       "06-application-from-austria.eml")]  # editors, outside Germany
EDITOR, PASSWORD = "anna", "Kastanienallee-17-Regenschirm"


@dataclass
class Relay:
    """The test's relay (its config and folder), the SMTP sink it forwards to, and its console."""

    config: Path
    directory: Path
    sink: object
    console: Console

    def mail_id(self, message_id: str) -> int:
        [(mail_id,)] = query_state(self.directory, f"SELECT id FROM mails WHERE message_id = '{message_id}'")
        return mail_id


@pytest.fixture
def relay(tmp_path, dovecot, imap_user, smtp_sink, serve) -> Relay:
    """Two polls over the demo mails: the research institute's refused by the SMTP server and quarantined,
    then three forwarded; an editor account; the console served for that config."""
    config = write_config(tmp_path, dovecot, imap_user, smtp_sink)
    with config.open("a", encoding="utf-8") as file:
        file.write('\n[web]\nusers_file = "web-users"\nsecret_file = "web-secret"\n')
    dovecot.append(imap_user, "INBOX", RESEARCH.read_bytes())
    smtp_sink.reject_next(1, code=554)
    assert once(config) == 0
    for mail in FORWARDED:
        dovecot.append(imap_user, "INBOX", mail.read_bytes())
    assert once(config) == 0
    assert len(forwards(smtp_sink)) == 3
    added = subprocess.run([sys.executable, "-m", "mailrelay", "--config", str(config), "web", "adduser", EDITOR,
                            "--password-stdin"], input=PASSWORD + "\n", capture_output=True, text=True, timeout=60)
    assert added.returncode == 0, added.stderr
    return Relay(config, tmp_path, smtp_sink, serve(config))


def log_in(page: Page, shot: bool = False) -> None:
    """Through the login form, as an editor would (`shot`: a screenshot of the filled form); then on the
    overview."""
    page.open("/")
    page.wait_until_path("/login")
    page.wait_for("input[name=username]").send_keys(EDITOR)
    page.wait_for("input[name=password]").send_keys(PASSWORD)
    if shot:
        page.shot("anmeldung")
    _submit(page.driver.find_element("css selector", "input[name=password]"))
    page.wait_until_path("/")


def _submit(element) -> None:
    """Submit the form `element` is in by its own button, as a click would."""
    form = element.find_element("xpath", "./ancestor::form")
    form.find_element("css selector", "button[type=submit], input[type=submit], button:not([type])").click()


def _mail_links(page: Page, table: str) -> list:
    """The rows of `table` that link to a mail's page (header rows have none)."""
    return [row for row in page.driver.find_elements("css selector", f"{table} tr")
            if row.find_elements("css selector", "a[href*='/mail/']")]


def test_editor_logs_in_through_the_form_and_sees_the_overview(page_for, relay):
    """Without a session a page leads to the login; the editor's name and password lead to the overview,
    which names the editor and links every page; the logout ends the session."""
    page = page_for(relay.console)
    log_in(page, shot=True)
    header = page.wait_for("header")
    assert EDITOR in header.text
    for label in ("Übersicht", "Verlauf", "Zur Prüfung", "Quarantäne", "Regel ausprobieren", "Mail prüfen"):
        assert label in header.text
    page.shot("uebersicht")
    _submit(header.find_element("xpath", ".//button[contains(., 'Abmelden')]"))
    page.wait_until_path("/login")
    page.open("/verlauf")
    page.wait_until_path("/login")


def test_wrong_password_stays_on_the_login_without_a_session(page_for, relay):
    """A wrong password leaves the browser on the login page with a German message, and the next page
    leads back there."""
    page = page_for(relay.console)
    page.open("/login")
    page.wait_for("input[name=username]").send_keys(EDITOR)
    page.wait_for("input[name=password]").send_keys("falsch")
    _submit(page.driver.find_element("css selector", "input[name=password]"))
    assert "Passwort stimmt nicht" in page.wait_for("#login-error").text
    assert page.path() == "/login"
    page.shot("falsches-passwort")
    page.open("/")
    page.wait_until_path("/login")


def test_history_finds_a_mail_by_its_sender_and_opens_its_story(page_for, relay):
    """On the history page a search by sender lists that sender's mail alone; its row opens the mail's page,
    which tells its story: subject, sender and the address it was forwarded to."""
    page = page_for(relay.console)
    log_in(page)
    page.open("/verlauf")
    page.wait_for("input[name=sender]").send_keys("niedersachsen.de")
    _submit(page.driver.find_element("css selector", "input[name=sender]"))
    page.wait_for("#results")
    rows = _mail_links(page, "#results")
    assert len(rows) == 1, [row.text for row in rows]
    [row] = rows
    assert "albrecht" in row.text.lower()
    page.shot("verlauf-nach-absender")
    row.find_element("css selector", "a[href*='/mail/']").click()
    path = page.wait_until_path(r"/mail/\d+")
    assert int(path.rsplit("/", 1)[1]) == relay.mail_id("<demo-01@wirtschaft.niedersachsen.de>")
    story = page.text()
    assert "Bewerbung Cluster-Expertengruppe" in story
    assert "sabine.albrecht@wirtschaft.niedersachsen.de" in story
    assert "desk-public@bmwi.example" in story  # where it was forwarded to
    page.shot("mail-geschichte")


def test_released_quarantined_mail_is_forwarded_by_the_next_poll(page_for, relay):
    """The quarantine page lists the mail the SMTP server refused; released there (by the rules), the next
    poll forwards it to the desk the rules choose, the trail names the editor, and the page no longer lists it."""
    mail_id = relay.mail_id("<demo-02@hs-example.de>")
    page = page_for(relay.console)
    log_in(page)
    page.open("/quarantaene")
    page.wait_for("#queue")
    rows = page.driver.find_elements("css selector", "#queue tr[data-mail-id]")
    assert [row.get_attribute("data-mail-id") for row in rows] == [str(mail_id)]
    assert "lindner" in rows[0].text.lower()
    page.shot("quarantaene")
    release = page.wait_for(f"form[action$='/quarantaene/{mail_id}/freigeben']")
    release.find_element("css selector", "button[type=submit], input[type=submit], button:not([type])").click()
    page.wait_until_path("/quarantaene")
    page.wait_for("main")
    page.shot("freigegeben")
    assert len(forwards(relay.sink)) == 3  # the request alone sends nothing
    assert once(relay.config) == 0
    released = [received for received in forwards(relay.sink) if b"<demo-02@hs-example.de>" in received.data]
    assert [received.rcpt_tos for received in released] == [("desk-experts@bmwi.example",)]
    assert [detail["by"] for _, event, detail in audit_events(relay.directory) if event == "queue.released"] == [EDITOR]
    page.open("/quarantaene")
    page.wait_for("main")
    assert page.driver.find_elements("css selector", f"#queue tr[data-mail-id='{mail_id}']") == []
    page.shot("quarantaene-nach-abruf")


NIEDERSACHSEN_TO_EXPERTS = """\
[[rules]]
name = "niedersachsen-experts"
when = { kind = "application", domain = "*.niedersachsen.de" }
desk = "desk-experts"

"""


def test_rule_trial_shows_the_routes_a_changed_desk_would_change(page_for, relay):
    """Pasting the routing file with a rule before the public bodies' that sends Lower Saxony's applications
    to the experts' desk passes the check, and the diff table shows the state ministry's mail moving from
    desk-public to desk-experts, and no other mail."""
    routing = (REPO / "config" / "routing.toml").read_text(encoding="utf-8")
    changed, count = re.subn(r'(?=\[\[rules\]\]\nname = "public-body-germany")', NIEDERSACHSEN_TO_EXPERTS, routing)
    assert count == 1
    page = page_for(relay.console)
    log_in(page)
    page.open("/regel")
    textarea = page.wait_for("textarea[name=routing]")
    # What pasting does, without typing 3,500 characters key by key.
    page.driver.execute_script("arguments[0].value = arguments[1];", textarea, changed)
    page.shot("regel-eingefuegt")
    _submit(textarea)
    page.wait_for("#problems")  # the trial's answer: the check's problems (none), then the replay
    page.shot("regel-vergleich")
    assert page.wait_for("#problems").text == "", page.wait_for("#problems").text
    [diff] = page.driver.find_elements("css selector", "#diff") or [None]
    assert diff is not None, page.text()
    rows = [row for row in diff.find_elements("css selector", "tr") if row.find_elements("css selector", "td")]
    ministry = [row for row in rows if "Bewerbung Cluster-Expertengruppe" in row.text or "albrecht" in row.text.lower()]
    assert len(ministry) == 1, diff.text
    cells = [cell.text for cell in ministry[0].find_elements("css selector", "td")]
    assert len(cells) >= 3, cells
    before, after = cells[-2], cells[-1]
    assert "desk-public" in before or "öffentliche Stellen" in before, cells
    assert "desk-experts" in after or "Einzelsachverständige" in after, cells
    assert "Question about the cluster expert group" not in diff.text  # the inquiry stays with the editors
