"""The editors' queues against the test servers: quarantine and review list, show, release and drop."""
from __future__ import annotations

import getpass
import json
import mailbox
from datetime import datetime, timedelta, timezone

import pytest

from mailrelay import health
from mailrelay.cli import main
from mailrelay.state.sqlite import SqliteStore as Store
from tests.helpers import REPO
from tests.relaytest import (alerts, audit_events, forwards, mail_states, once, routing_with, without_crlf,
                             write_config)

MAILS = REPO / "mailrelay" / "demo" / "mails"
MINISTRY = (MAILS / "01-application-state-ministry.eml").read_bytes()  # desk-public, confidence 0.83
RESEARCH = (MAILS / "02-application-research-institute.eml").read_bytes()  # desk-experts, confidence 0.88
INQUIRY = (MAILS / "03-inquiry-how-to-apply.eml").read_bytes()  # editors, "Anfrage, keine Bewerbung"
AUSTRIA = (MAILS / "06-application-from-austria.eml").read_bytes()  # editors, "Zur Prüfung: ... außerhalb"




def _run(config, *arguments: str) -> int:
    return main(["--config", str(config), *arguments])


def _listed(config, queue: str, capsys) -> list[dict]:
    capsys.readouterr()
    assert _run(config, queue, "list", "--json") == 0
    return json.loads(capsys.readouterr().out)


def _counts(directory) -> dict:
    store = Store(directory / "state.sqlite", read_only=True)
    try:
        return store.mail_counts((datetime.now(timezone.utc) - timedelta(days=1)).isoformat())
    finally:
        store.close()


def _quarantined_last_day(directory) -> int:
    store = Store(directory / "state.sqlite", read_only=True)
    try:
        return health.facts(store).quarantined_last_day
    finally:
        store.close()


def _events(directory, name: str) -> list[dict]:
    return [detail for _, event, detail in audit_events(directory) if event == name]


def test_release_by_the_rules_forwards_the_mail_and_moves_its_copy_to_processed(tmp_path, dovecot, imap_user,
                                                                               smtp_sink, capsys):
    """A mail quarantined by an SMTP refusal, released, reaches the desk the rules choose with the next poll,
    leaves the quarantine mailbox for the processed one, and the audit trail names who released it."""
    config = write_config(tmp_path, dovecot, imap_user, smtp_sink)
    dovecot.append(imap_user, "INBOX", RESEARCH)
    smtp_sink.reject_next(1, code=554)
    assert once(config) == 0
    [waiting] = _listed(config, "quarantine", capsys)
    assert {"id", "message_id", "sender", "subject", "reason", "since"} <= set(waiting)
    assert waiting["message_id"] == "<demo-02@hs-example.de>" and waiting["sender"]
    assert _quarantined_last_day(tmp_path) == 1
    assert _run(config, "quarantine", "release", str(waiting["id"]), "--by", "Erika Muster") == 0
    assert "freigegeben" in capsys.readouterr().out
    assert _quarantined_last_day(tmp_path) == 0 and _counts(tmp_path)["in_quarantine"] == 0
    assert forwards(smtp_sink) == []  # the request alone sends nothing
    assert once(config) == 0
    assert [received.rcpt_tos for received in forwards(smtp_sink)] == [("desk-experts@bmwi.example",)]
    assert dovecot.messages(imap_user, "Quarantine") == []
    assert [without_crlf(m) for m in dovecot.messages(imap_user, "Processed")] == [without_crlf(RESEARCH)]
    assert mail_states(tmp_path) == [("forwarded", "desk-experts", "Processed")]
    events = [event for _, event, _ in audit_events(tmp_path)]
    assert events.index("queue.release_requested") < events.index("mail.sending", events.index("queue.release_requested"))
    assert [detail["by"] for detail in _events(tmp_path, "queue.released")] == ["Erika Muster"]
    assert _events(tmp_path, "queue.release_requested")[0]["by"] == "Erika Muster"
    assert once(config) == 0 and len(forwards(smtp_sink)) == 1
    assert _listed(config, "quarantine", capsys) == []


def test_release_refused_when_the_rules_would_hold_it_again_then_sent_to_the_named_desk(tmp_path, dovecot, imap_user,
                                                                                       smtp_sink, capsys):
    """Released without --to, a mail the rules in force would quarantine again is refused with what to do;
    with --to the next poll sends it to that desk and moves its copy to the processed mailbox."""
    config = write_config(tmp_path, dovecot, imap_user, smtp_sink, rules=routing_with(tmp_path, "niedersachsen.de"))
    dovecot.append(imap_user, "INBOX", MINISTRY)
    assert once(config) == 0
    assert len(alerts(smtp_sink)) == 1 and forwards(smtp_sink) == []
    [waiting] = _listed(config, "quarantine", capsys)
    assert waiting["reason"] == "von Hand prüfen"
    mail_id = str(waiting["id"])
    assert _run(config, "quarantine", "release", mail_id) == 1
    error = capsys.readouterr().err
    assert "wieder in Quarantäne" in error and "--to REFERAT" in error and error.count("\n") == 1
    assert _run(config, "quarantine", "release", mail_id, "--to", "nowhere") == 1
    assert "kein Referat 'nowhere'" in capsys.readouterr().err
    assert _run(config, "quarantine", "release", mail_id, "--to", "desk-experts", "--by", "Erika") == 0
    assert once(config) == 0
    [received] = forwards(smtp_sink)
    assert received.rcpt_tos == ("desk-experts@bmwi.example",)
    assert without_crlf(MINISTRY) in without_crlf(received.data)
    assert dovecot.messages(imap_user, "Quarantine") == [] and len(dovecot.messages(imap_user, "Processed")) == 1
    assert _events(tmp_path, "queue.released")[0]["desk"] == "desk-experts"


def test_drop_moves_the_copy_to_ignored_and_status_stops_counting_it(tmp_path, dovecot, imap_user, smtp_sink, capsys):
    """A dropped mail ends in the ignored mailbox, unsent, with the reason and who dropped it in the audit
    trail; from the request on it no longer counts against status."""
    config = write_config(tmp_path, dovecot, imap_user, smtp_sink, rules=routing_with(tmp_path, "niedersachsen.de"))
    dovecot.append(imap_user, "INBOX", MINISTRY)
    assert once(config) == 0
    assert _quarantined_last_day(tmp_path) == 1 and _counts(tmp_path)["in_quarantine"] == 1
    [waiting] = _listed(config, "quarantine", capsys)
    assert _run(config, "quarantine", "drop", str(waiting["id"]), "--reason", "Werbung, von Hand geprüft") == 0
    assert "verworfen" in capsys.readouterr().out
    assert _quarantined_last_day(tmp_path) == 0 and _counts(tmp_path)["in_quarantine"] == 0
    assert once(config) == 0
    assert forwards(smtp_sink) == []
    assert dovecot.messages(imap_user, "Quarantine") == []
    assert [without_crlf(m) for m in dovecot.messages(imap_user, "Ignored")] == [without_crlf(MINISTRY)]
    assert mail_states(tmp_path) == [("ignored", "none", "Ignored")]
    [dropped] = _events(tmp_path, "queue.dropped")
    assert dropped["reason"] == "Werbung, von Hand geprüft" and dropped["by"] == getpass.getuser()


def test_a_copy_whose_uid_changed_is_found_by_message_id_and_bytes(tmp_path, dovecot, imap_user, smtp_sink, capsys):
    """Moved out of the quarantine mailbox and back by hand (a new UID), the copy is still the one released."""
    config = write_config(tmp_path, dovecot, imap_user, smtp_sink, rules=routing_with(tmp_path, "niedersachsen.de"))
    dovecot.append(imap_user, "INBOX", MINISTRY)
    assert once(config) == 0
    dovecot.append(imap_user, "Quarantine", AUSTRIA)  # another mail there, which must stay
    with dovecot.client(imap_user) as client:
        client.create_folder("Elsewhere")
        client.select_folder("Quarantine")
        client.move(client.search(["HEADER", "Message-ID", "demo-01"]), "Elsewhere")
        client.select_folder("Elsewhere")
        client.move(client.search("ALL"), "Quarantine")
    [waiting] = _listed(config, "quarantine", capsys)
    assert _run(config, "quarantine", "release", str(waiting["id"]), "--to", "desk-public") == 0
    assert once(config) == 0
    assert [without_crlf(m) for m in dovecot.messages(imap_user, "Processed")] == [without_crlf(MINISTRY)]
    assert [without_crlf(m) for m in dovecot.messages(imap_user, "Quarantine")] == [without_crlf(AUSTRIA)]


def test_review_list_shows_exactly_the_review_mails_and_release_and_drop_work_it_down(tmp_path, dovecot, imap_user,
                                                                                     smtp_sink, capsys):
    """Review holds the low-confidence forward and the "Zur Prüfung" one, not the inquiry or a desk's
    application; release --to sends one on to a desk, drop marks the other done, both name who."""
    config = write_config(tmp_path, dovecot, imap_user, smtp_sink, rules=routing_with(tmp_path, review_below=0.85))
    for mail in (MINISTRY, RESEARCH, INQUIRY, AUSTRIA):
        dovecot.append(imap_user, "INBOX", mail)
    assert once(config) == 0 and len(forwards(smtp_sink)) == 4
    listed = _listed(config, "review", capsys)
    assert [mail["message_id"] for mail in listed] == ["<demo-01@wirtschaft.niedersachsen.de>",
                                                       "<demo-06@cluster-example.at>"]
    assert [mail["rule"] for mail in listed] == ["low-confidence-review", "application-outside-germany"]
    assert all(mail["reason"] and mail["sender"] and mail["date"] for mail in listed)
    assert listed[0]["confidence"] == pytest.approx(0.83, abs=0.01)
    assert _counts(tmp_path)["in_review"] == 2
    capsys.readouterr()
    assert _run(config, "review", "list") == 0
    table = capsys.readouterr().out
    assert "Sicherheit" in table and "2 Mails in der Prüfliste" in table and "0.83" in table
    assert _run(config, "review", "release", str(listed[0]["id"]), "--to", "desk-public", "--by", "Erika") == 0
    assert once(config) == 0
    assert forwards(smtp_sink)[-1].rcpt_tos == ("desk-public@bmwi.example",) and len(forwards(smtp_sink)) == 5
    assert [mail["id"] for mail in _listed(config, "review", capsys)] == [listed[1]["id"]]
    assert _run(config, "review", "drop", str(listed[1]["id"]), "--by", "Erika") == 0
    assert "erledigt" in capsys.readouterr().out
    assert _listed(config, "review", capsys) == [] and _counts(tmp_path)["in_review"] == 0
    assert [(d["by"], d["reason"]) for d in _events(tmp_path, "queue.dropped")] == [("Erika", "erledigt")]
    assert once(config) == 0 and len(forwards(smtp_sink)) == 5


def test_show_says_what_the_rules_in_force_would_do(tmp_path, dovecot, imap_user, smtp_sink, capsys):
    """show gives the sender, the reason, the text's beginning and the rules' verdict now."""
    config = write_config(tmp_path, dovecot, imap_user, smtp_sink, rules=routing_with(tmp_path, "niedersachsen.de"))
    dovecot.append(imap_user, "INBOX", MINISTRY)
    assert once(config) == 0
    [waiting] = _listed(config, "quarantine", capsys)
    assert _run(config, "quarantine", "show", str(waiting["id"])) == 0
    shown = capsys.readouterr().out
    assert "von Hand prüfen" in shown and "Sehr geehrte" in shown and "zurückhalten" in shown
    assert "freigeben mit --to REFERAT" in shown


@pytest.mark.parametrize("arguments, says", [
    (("quarantine", "release", "999"), "keine Mail mit der Nummer 999"),
    (("quarantine", "show", "abc"), "'abc' ist keine Mailnummer"),
    (("review", "release", "{id}", "--to", "desk-public"), "nicht zur Prüfung"),
    (("review", "drop", "{id}"), "nicht zur Prüfung"),
    (("quarantine", "release", "{id}", "--to", "desk-nowhere"), "kein Referat 'desk-nowhere'"),
])
def test_mistakes_are_one_line_with_exit_1(tmp_path, dovecot, imap_user, smtp_sink, capsys, arguments, says):
    """An unknown id, the wrong queue or an unknown desk is one German line on stderr, exit 1, no traceback."""
    config = write_config(tmp_path, dovecot, imap_user, smtp_sink, rules=routing_with(tmp_path, "niedersachsen.de"))
    dovecot.append(imap_user, "INBOX", MINISTRY)
    assert once(config) == 0
    [waiting] = _listed(config, "quarantine", capsys)
    assert _run(config, *(part.format(id=waiting["id"]) for part in arguments)) == 1
    captured = capsys.readouterr()
    assert says in captured.err and captured.err.count("\n") == 1 and "Traceback" not in captured.err
    assert captured.out == ""


def test_a_second_request_for_the_same_mail_is_refused(tmp_path, dovecot, imap_user, smtp_sink, capsys):
    """Released once, the mail cannot be released or dropped again before the poll has carried it out."""
    config = write_config(tmp_path, dovecot, imap_user, smtp_sink, rules=routing_with(tmp_path, "niedersachsen.de"))
    dovecot.append(imap_user, "INBOX", MINISTRY)
    assert once(config) == 0
    [waiting] = _listed(config, "quarantine", capsys)
    assert _run(config, "quarantine", "release", str(waiting["id"]), "--to", "desk-public", "--by", "Erika") == 0
    assert _run(config, "quarantine", "drop", str(waiting["id"]), "--reason", "doch nicht") == 1
    assert "Erika hat" in capsys.readouterr().err
    assert once(config) == 0 and len(forwards(smtp_sink)) == 1


def test_no_state_file_is_one_line(tmp_path, dovecot, imap_user, smtp_sink, capsys):
    """Before the relay ever ran, list says so in one line with exit 1, in English with --lang en."""
    config = write_config(tmp_path, dovecot, imap_user, smtp_sink)
    assert main(["--config", str(config), "--lang", "en", "quarantine", "list"]) == 1
    error = capsys.readouterr().err
    assert "no state file" in error and error.count("\n") == 1
    assert not (tmp_path / "state.sqlite").exists()


def test_release_from_a_maildir_quarantine_folder(tmp_path, capsys):
    """With a Maildir inbox the released copy moves from .Quarantine to .Processed and the outbox gets the forward."""
    rules = routing_with(tmp_path, "niedersachsen.de")
    config = tmp_path / "mailrelay.toml"
    config.write_text(f'rules = "{rules}"\nsignals = "{REPO / "config" / "signals.toml"}"\n'
                      f'templates = "{REPO / "templates"}"\n[maildir]\npath = "inbox"\n[outbox]\npath = "outbox"\n'
                      '[state]\npath = "state.sqlite"\n[relay]\nfrom_address = "relay@clusterplattform.example"\n',
                      encoding="utf-8")
    inbox = mailbox.Maildir(tmp_path / "inbox", create=True)
    inbox.add(MINISTRY)
    assert once(config) == 0
    assert len(list(mailbox.Maildir(tmp_path / "inbox" / ".Quarantine", create=False).keys())) == 1
    [waiting] = _listed(config, "quarantine", capsys)
    assert _run(config, "quarantine", "release", str(waiting["id"]), "--to", "desk-public") == 0
    assert once(config) == 0
    assert list(mailbox.Maildir(tmp_path / "inbox" / ".Quarantine", create=False).keys()) == []
    processed = mailbox.Maildir(tmp_path / "inbox" / ".Processed", create=False)
    assert [without_crlf(processed.get_bytes(key)) for key in processed.keys()] == [without_crlf(MINISTRY)]
    assert len(list((tmp_path / "outbox").glob("*.desk-public.eml"))) == 1
