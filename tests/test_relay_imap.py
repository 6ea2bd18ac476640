"""The whole relay against a real Dovecot (IMAP, TLS) and a real aiosmtpd server."""
from __future__ import annotations

import email
import email.policy
import json
import shutil

import pytest

from mailrelay.state.sqlite import SqliteStore as Store
from tests.helpers import REPO
from tests.relaytest import (RELAY_ADDRESS, alerts, audit_events, closed_port, forwards, make_retries_due,
                              mail_states, once, without_crlf, write_config)

MAILS = REPO / "mailrelay" / "demo" / "mails"
APPLICATION = (MAILS / "01-application-state-ministry.eml").read_bytes()
AUTO_REPLY = (MAILS / "04-auto-reply-out-of-office.eml").read_bytes()
BOUNCE = (MAILS / "05-bounce-dsn.eml").read_bytes()


def _move_out_and_back(dovecot, user: str) -> None:
    """What a person does by dragging a mail to another folder and back: it gets a new UID."""
    with dovecot.client(user) as client:
        client.create_folder("Elsewhere")
        client.select_folder("INBOX")
        client.move(client.search("ALL"), "Elsewhere")
        client.select_folder("Elsewhere")
        client.move(client.search("ALL"), "INBOX")


@pytest.fixture
def config(tmp_path, dovecot, imap_user, smtp_sink):
    return write_config(tmp_path, dovecot, imap_user, smtp_sink)


def test_application_is_forwarded_to_its_desk_and_moved_unread(config, dovecot, imap_user, smtp_sink):
    """A German ministry's application reaches desk-public once and leaves the inbox, still unread."""
    dovecot.append(imap_user, "INBOX", APPLICATION)
    assert once(config) == 0
    [received] = smtp_sink.received
    assert received.rcpt_tos == ("desk-public@bmwi.example",) and received.mail_from == RELAY_ADDRESS
    assert without_crlf(APPLICATION) in without_crlf(received.data)
    assert dovecot.messages(imap_user, "INBOX") == []
    assert [without_crlf(m) for m in dovecot.messages(imap_user, "Processed")] == [without_crlf(APPLICATION)]
    with dovecot.client(imap_user) as client:
        client.select_folder("Processed", readonly=True)
        flags = client.get_flags(client.search("ALL"))
    assert all(b"\\Seen" not in f for f in flags.values())


def test_second_poll_sends_nothing(config, dovecot, imap_user, smtp_sink):
    """Running again over the same mailbox forwards nothing more."""
    dovecot.append(imap_user, "INBOX", APPLICATION)
    assert once(config) == 0 and once(config) == 0
    assert len(smtp_sink.received) == 1


def test_machine_mail_is_archived_not_forwarded(config, dovecot, imap_user, smtp_sink):
    """Auto-replies and bounces go to the ignored mailbox and never to a desk."""
    dovecot.append(imap_user, "INBOX", AUTO_REPLY)
    dovecot.append(imap_user, "INBOX", BOUNCE)
    assert once(config) == 0
    assert smtp_sink.received == []
    assert len(dovecot.messages(imap_user, "Ignored")) == 2
    assert dovecot.messages(imap_user, "INBOX") == []


def test_temporary_smtp_failure_keeps_the_mail_until_accepted(config, dovecot, imap_user, smtp_sink):
    """A 451 leaves the mail in the inbox; the next poll forwards it once and archives it."""
    dovecot.append(imap_user, "INBOX", APPLICATION)
    smtp_sink.reject_next(1, code=451)
    assert once(config) == 0
    assert smtp_sink.received == [] and len(dovecot.messages(imap_user, "INBOX")) == 1
    assert mail_states(config.parent) == [("retry", "desk-public", None)]
    assert once(config) == 0
    assert len(smtp_sink.received) == 1
    assert dovecot.messages(imap_user, "INBOX") == []
    assert mail_states(config.parent) == [("forwarded", "desk-public", "Processed")]


def test_permanent_smtp_failure_quarantines(config, dovecot, imap_user, smtp_sink):
    """A 550 moves the mail to quarantine and records the server's reply."""
    dovecot.append(imap_user, "INBOX", APPLICATION)
    smtp_sink.reject_next(1, code=550)
    assert once(config) == 0
    assert forwards(smtp_sink) == [] and len(alerts(smtp_sink)) == 1
    assert len(dovecot.messages(imap_user, "Quarantine")) == 1
    refused = [detail for _, event, detail in audit_events(config.parent) if event == "mail.refused"]
    assert refused and refused[0]["reply"].startswith("550")


def test_quarantined_mails_are_reported_to_the_alert_desk_once_per_poll(config, dovecot, imap_user, smtp_sink):
    """Mails quarantined in a poll are named in one note to the editors, sent through the same relay."""
    dovecot.append(imap_user, "INBOX", APPLICATION)
    dovecot.append(imap_user, "INBOX", (MAILS / "02-application-research-institute.eml").read_bytes())
    smtp_sink.reject_next(2, code=554)
    assert once(config) == 0
    [alert] = smtp_sink.received
    assert alert.rcpt_tos == ("redaktion@clusterplattform.example",)
    text = alert.data.decode("utf-8")
    assert "Subject: [mailrelay] 2 Mail(s) in" in text and "554" in text and "Bewerbung Cluster-Expertengruppe" in text
    assert "Auto-Submitted: auto-generated" in text and "X-Mailrelay-Loop: test-relay" in text
    assert [event for _, event, _ in audit_events(config.parent)].count("alert.sent") == 1
    assert once(config) == 0 and len(smtp_sink.received) == 1  # nothing new, no new note


def test_same_mail_twice_is_forwarded_once(config, dovecot, imap_user, smtp_sink):
    """The same bytes arriving again are recorded as a duplicate and archived, not forwarded."""
    dovecot.append(imap_user, "INBOX", APPLICATION)
    dovecot.append(imap_user, "INBOX", APPLICATION)
    assert once(config) == 0
    assert len(smtp_sink.received) == 1
    assert len(dovecot.messages(imap_user, "Processed")) == 2
    assert "mail.duplicate" in [event for _, event, _ in audit_events(config.parent)]


def test_mail_moved_back_into_the_inbox_is_not_forwarded_again(config, dovecot, imap_user, smtp_sink):
    """Someone moving a handled mail back to the inbox does not cause a second forward."""
    dovecot.append(imap_user, "INBOX", APPLICATION)
    assert once(config) == 0
    with dovecot.client(imap_user) as client:
        client.select_folder("Processed")
        client.move(client.search("ALL"), "INBOX")
    assert once(config) == 0
    assert len(smtp_sink.received) == 1
    assert dovecot.messages(imap_user, "INBOX") == []


def test_every_step_is_audited_with_rule_and_evidence(config, dovecot, imap_user, smtp_sink, capsys):
    """The store and the JSON log both tell the story: received, decided, sending, forwarded, archived."""
    dovecot.append(imap_user, "INBOX", APPLICATION)
    assert once(config) == 0
    events = audit_events(config.parent)
    assert [event for mail_id, event, _ in events if mail_id] == [
        "mail.received", "mail.try", "mail.decided", "mail.sending", "mail.forwarded", "mail.archived"]
    decided = next(detail for _, event, detail in events if event == "mail.decided")
    assert decided["rule"] == "public-body-germany" and decided["evidence"]
    forwarded = next(detail for _, event, detail in events if event == "mail.forwarded")
    assert forwarded["reply"].startswith("250")
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert {"poll.started", "mail.decided", "mail.forwarded", "poll.finished"} <= {e["event"] for e in logged}
    assert all("timestamp" in e and "level" in e for e in logged)


def test_a_broken_template_quarantines_the_mail_and_the_poll_goes_on(tmp_path, dovecot, imap_user, smtp_sink):
    """A template error that shows only for some mails costs that mail (quarantined, recorded), not the poll."""
    templates = tmp_path / "templates"
    shutil.copytree(REPO / "templates", templates)
    with open(templates / "summary.txt.j2", "a", encoding="utf-8") as handle:
        handle.write('{% if "Hannover" in mail.text %}{{ no_such_variable }}{% endif %}\n')
    config = write_config(tmp_path, dovecot, imap_user, smtp_sink, templates=templates)
    dovecot.append(imap_user, "INBOX", APPLICATION)
    dovecot.append(imap_user, "INBOX", AUTO_REPLY)
    assert once(config) == 0
    assert forwards(smtp_sink) == [] and len(alerts(smtp_sink)) == 1
    assert len(dovecot.messages(imap_user, "Quarantine")) == 1
    assert len(dovecot.messages(imap_user, "Ignored")) == 1
    failed = [detail for _, event, detail in audit_events(tmp_path) if event == "mail.failed"]
    assert "no_such_variable" in failed[0]["error"]


def test_unreachable_imap_server_exits_1(tmp_path, dovecot, imap_user, smtp_sink):
    """When the IMAP server cannot be reached, `once` says so and exits 1."""
    config = write_config(tmp_path, dovecot, imap_user, smtp_sink, imap_port=closed_port())
    assert once(config) == 1


def test_wrong_password_exits_1(tmp_path, dovecot, imap_user, smtp_sink, capsys):
    """A refused login is a failed poll (exit 1), and the password never reaches the output."""
    config = write_config(tmp_path, dovecot, imap_user, smtp_sink)
    (tmp_path / "imap.secret").write_text("wrong-canary-password", encoding="utf-8")
    assert once(config) == 1
    output = capsys.readouterr()
    assert "konnte nicht laufen" in output.err  # German, the default
    assert "wrong-canary-password" not in output.out + output.err


def test_bad_config_exits_2(tmp_path, capsys):
    """A config with problems is refused with exit 2 and each problem named."""
    path = tmp_path / "mailrelay.toml"
    path.write_text("[imap]\nhots = 1\n", encoding="utf-8")
    from mailrelay.cli import main

    assert main(["--lang", "en", "--config", str(path), "once"]) == 2
    assert f"{path}:2: unknown key 'hots'" in capsys.readouterr().err


def test_second_instance_on_the_same_state_is_refused(config, dovecot, imap_user, smtp_sink):
    """While one relay holds the state store, another refuses to poll (exit 1)."""
    holder = Store(config.parent / "state.sqlite")
    holder.lock()
    try:
        dovecot.append(imap_user, "INBOX", APPLICATION)
        assert once(config) == 1
        assert smtp_sink.received == []
    finally:
        holder.close()


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_smtp_over_tls_with_auth_and_a_private_ca(tmp_path, dovecot, imap_user, make_smtp_sink, security):
    """STARTTLS and implicit TLS to the SMTP server, verified against ca_file, with AUTH."""
    sink = make_smtp_sink(tls=True, implicit_tls=security == "tls", auth=("relay-user", "smtp-canary"))
    (tmp_path / "smtp.secret").write_text("smtp-canary\n", encoding="utf-8")
    smtp = (f'[smtp]\nhost = "127.0.0.1"\nport = {sink.port}\nsecurity = "{security}"\n'
            f'ca_file = "{dovecot.ca_file}"\nusername = "relay-user"\npassword_file = "smtp.secret"\ntimeout = 10\n')
    config = write_config(tmp_path, dovecot, imap_user, smtp=smtp)
    dovecot.append(imap_user, "INBOX", APPLICATION)
    assert once(config) == 0
    assert len(sink.received) == 1
    assert dovecot.messages(imap_user, "INBOX") == []


def test_smtp_certificate_not_trusted_defers_the_mail(tmp_path, dovecot, imap_user, make_smtp_sink):
    """Without the private CA the certificate is refused: nothing sent, the mail waits in the inbox."""
    sink = make_smtp_sink(tls=True, implicit_tls=True)
    smtp = f'[smtp]\nhost = "127.0.0.1"\nport = {sink.port}\nsecurity = "tls"\ntimeout = 10\n'
    config = write_config(tmp_path, dovecot, imap_user, smtp=smtp)
    dovecot.append(imap_user, "INBOX", APPLICATION)
    assert once(config) == 0
    assert sink.received == [] and len(dovecot.messages(imap_user, "INBOX")) == 1
    deferred = [detail for _, event, detail in audit_events(tmp_path) if event == "mail.deferred"]
    assert "CERTIFICATE_VERIFY_FAILED" in deferred[0]["reply"]


def test_refused_login_or_sender_defers_every_mail_without_quarantining(config, dovecot, imap_user, smtp_sink):
    """A 530 at MAIL FROM is about the relay, not the mail: all mails wait in the inbox, none is quarantined."""
    dovecot.append(imap_user, "INBOX", APPLICATION)
    dovecot.append(imap_user, "INBOX", (MAILS / "02-application-research-institute.eml").read_bytes())
    smtp_sink.reject_next(1, code=530, stage="mail")
    assert once(config) == 0
    assert smtp_sink.received == [] and dovecot.messages(imap_user, "Quarantine") == []
    assert [state for state, _, _ in mail_states(config.parent)] == ["retry", "retry"]
    deferred = [detail["reply"] for _, event, detail in audit_events(config.parent) if event == "mail.deferred"]
    assert deferred[0].startswith("sender") and deferred[1].startswith("not tried")
    assert once(config) == 0
    assert len(smtp_sink.received) == 2 and dovecot.messages(imap_user, "INBOX") == []


def test_deferred_mail_moved_out_and_back_is_still_forwarded(config, dovecot, imap_user, smtp_sink):
    """A waiting mail that gets a new UID (moved away and back) is forwarded once when SMTP works again."""
    dovecot.append(imap_user, "INBOX", APPLICATION)
    smtp_sink.reject_next(1, code=451)
    assert once(config) == 0
    _move_out_and_back(dovecot, imap_user)
    assert once(config) == 0
    assert len(smtp_sink.received) == 1
    assert dovecot.messages(imap_user, "INBOX") == []
    assert "mail.moved" in [event for _, event, _ in audit_events(config.parent)]


def test_raw_bytes_are_purged_after_the_retention_only_for_finished_mail(config, dovecot, imap_user, smtp_sink):
    """Raw mails older than keep_raw_days are dropped for finished mails; a waiting mail keeps its bytes."""
    import sqlite3

    def raw_count() -> int:
        with sqlite3.connect(config.parent / "state.sqlite") as db:
            return db.execute("SELECT count(*) FROM raw_mails").fetchone()[0]

    dovecot.append(imap_user, "INBOX", APPLICATION)
    dovecot.append(imap_user, "INBOX", AUTO_REPLY)
    smtp_sink.reject_next(1, code=451)
    assert once(config) == 0
    with sqlite3.connect(config.parent / "state.sqlite") as db:
        db.execute("UPDATE mails SET first_seen = '2000-01-01T00:00:00.000+00:00'")
    smtp_sink.reject_next(1, code=451)  # the application is still waiting after this poll
    assert once(config) == 0
    assert raw_count() == 1  # the auto-reply's bytes are gone, the waiting application's are kept
    assert once(config) == 0
    assert len(forwards(smtp_sink)) == 1 and raw_count() == 0
    assert [event for _, event, _ in audit_events(config.parent)].count("raw.purged") == 2


def test_deferred_mail_waits_for_its_backoff_before_it_is_fetched_again(tmp_path, dovecot, imap_user, smtp_sink):
    """After a 451 the mail is not fetched or sent again until its next attempt is due."""
    import sqlite3

    config = write_config(tmp_path, dovecot, imap_user, smtp_sink, schedule="retry_min_seconds = 3600")
    dovecot.append(imap_user, "INBOX", APPLICATION)
    smtp_sink.reject_next(1, code=451)
    assert once(config) == 0 and once(config) == 0
    assert smtp_sink.received == []
    deferred = [detail for _, event, detail in audit_events(tmp_path) if event == "mail.deferred"]
    from datetime import datetime, timedelta, timezone

    assert len(deferred) == 1
    assert datetime.fromisoformat(deferred[0]["next_attempt"]) > datetime.now(timezone.utc) + timedelta(minutes=59)
    with sqlite3.connect(tmp_path / "state.sqlite") as db:
        db.execute("UPDATE mails SET next_attempt = '2000-01-01T00:00:00.000+00:00'")
    assert once(config) == 0
    assert len(smtp_sink.received) == 1 and dovecot.messages(imap_user, "INBOX") == []


def test_sender_over_the_hourly_limit_is_quarantined(tmp_path, dovecot, imap_user, smtp_sink):
    """More forwards from one sender within an hour than allowed: the rest go to quarantine with an error."""
    config = write_config(tmp_path, dovecot, imap_user, smtp_sink)
    config.write_text(config.read_text().replace('id = "test-relay"', 'id = "test-relay"\nmax_forwards_per_sender_per_hour = 2'))
    for number in range(4):
        dovecot.append(imap_user, "INBOX", APPLICATION.replace(b"<demo-01@", f"<demo-01-{number}@".encode()))
    assert once(config) == 0
    assert len(forwards(smtp_sink)) == 2 and len(alerts(smtp_sink)) == 1
    assert len(dovecot.messages(imap_user, "Quarantine")) == 2
    tripped = [detail for _, event, detail in audit_events(tmp_path) if event == "mail.circuit_breaker"]
    assert len(tripped) == 2 and tripped[0]["sender"] == "sabine.albrecht@wirtschaft.niedersachsen.de"


def test_thread_over_the_hourly_limit_is_quarantined(tmp_path, dovecot, imap_user, smtp_sink):
    """Mails from ever other senders answering one thread (two auto-responders mailing each other through
    aliases): past the limit they go to quarantine, whoever sends them."""
    config = write_config(tmp_path, dovecot, imap_user, smtp_sink)
    config.write_text(config.read_text().replace('id = "test-relay"', 'id = "test-relay"\nmax_forwards_per_thread_per_hour = 2'))
    for number in range(4):
        mail = APPLICATION.replace(b"<demo-01@", f"<thread-{number}@".encode()).replace(
            b"sabine.albrecht@", f"person{number}@".encode())
        dovecot.append(imap_user, "INBOX", b"References: <root@elsewhere.example>\r\n" + mail)
    assert once(config) == 0
    assert len(forwards(smtp_sink)) == 2 and len(dovecot.messages(imap_user, "Quarantine")) == 2
    tripped = [detail for _, event, detail in audit_events(tmp_path) if event == "mail.circuit_breaker"]
    assert [detail.get("thread") for detail in tripped] == ["<root@elsewhere.example>"] * 2


def test_mail_over_the_size_limit_is_quarantined_without_fetching_its_body(tmp_path, dovecot, imap_user,
                                                                          smtp_sink):
    """A mail over max_message_bytes is decided on RFC822.SIZE: quarantined, only its header recorded."""
    import sqlite3

    config = write_config(tmp_path, dovecot, imap_user, smtp_sink)
    config.write_text(config.read_text().replace("timeout = 10\n", "timeout = 10\nmax_message_bytes = 20000\n", 1))
    big = APPLICATION.replace(b"<demo-01@", b"<big-01@") + b"\n" + b"x" * 60 + (b"\n" + b"y" * 70) * 400
    dovecot.append(imap_user, "INBOX", big)
    dovecot.append(imap_user, "INBOX", APPLICATION)
    assert once(config) == 0
    assert len(forwards(smtp_sink)) == 1
    [quarantined] = dovecot.messages(imap_user, "Quarantine")
    assert len(quarantined) > 20000  # the mail itself is kept whole
    with sqlite3.connect(tmp_path / "state.sqlite") as db:
        stored = [len(row[0]) for row in db.execute("SELECT data FROM raw_mails")]
    assert min(stored) < 2000  # only the header of the large one was fetched and kept
    decided = [detail for _, event, detail in audit_events(tmp_path) if event == "mail.decided"]
    assert any(d["rule"] == "size-limit" and "too large" in d["reason"] for d in decided)


def test_imap_certificate_not_trusted_fails_the_poll_before_login(tmp_path, dovecot, imap_user, smtp_sink, capsys):
    """Without the private CA the IMAP server's certificate is refused: exit 1, nothing fetched."""
    config = write_config(tmp_path, dovecot, imap_user, smtp_sink)
    config.write_text(config.read_text().replace(f'ca_file = "{dovecot.ca_file}"\n', ""))
    dovecot.append(imap_user, "INBOX", APPLICATION)
    assert once(config) == 1
    assert "CERTIFICATE_VERIFY_FAILED" in capsys.readouterr().err
    assert len(dovecot.messages(imap_user, "INBOX")) == 1 and smtp_sink.received == []


def test_imap_starttls_on_the_plain_port(tmp_path, dovecot, imap_user, smtp_sink):
    """security = "starttls" upgrades the plain IMAP connection, verified against the CA, and relays."""
    config = write_config(tmp_path, dovecot, imap_user, smtp_sink, imap_port=dovecot.plain_port)
    config.write_text(config.read_text().replace('security = "tls"', 'security = "starttls"', 1))
    dovecot.append(imap_user, "INBOX", APPLICATION)
    assert once(config) == 0
    assert len(smtp_sink.received) == 1


def test_smtp_server_without_starttls_is_refused_when_starttls_is_required(tmp_path, dovecot, imap_user,
                                                                           smtp_sink):
    """A server that does not offer STARTTLS (a stripped one) gets no password and no mail; the mail waits."""
    (tmp_path / "smtp.secret").write_text("smtp-canary\n", encoding="utf-8")
    smtp = (f'[smtp]\nhost = "127.0.0.1"\nport = {smtp_sink.port}\nsecurity = "starttls"\n'
            f'username = "relay-user"\npassword_file = "smtp.secret"\ntimeout = 10\n')
    config = write_config(tmp_path, dovecot, imap_user, smtp=smtp)
    dovecot.append(imap_user, "INBOX", APPLICATION)
    assert once(config) == 0
    assert smtp_sink.received == [] and len(dovecot.messages(imap_user, "INBOX")) == 1
    [deferred] = [detail for _, event, detail in audit_events(tmp_path) if event == "mail.deferred"]
    assert "STARTTLS" in deferred["reply"] and "smtp-canary" not in json.dumps(audit_events(tmp_path))


def test_connection_lost_after_the_final_dot_is_retried_with_the_same_message_id(config, dovecot, imap_user,
                                                                                 smtp_sink):
    """The server took the mail but the reply never came: the outcome is unknown, so the mail is sent
    again at the next poll, and both copies carry the same Message-ID for the desk to recognise."""
    dovecot.append(imap_user, "INBOX", APPLICATION)
    smtp_sink.reject_next(1, stage="drop")
    assert once(config) == 0
    assert len(smtp_sink.received) == 1 and len(dovecot.messages(imap_user, "INBOX")) == 1
    assert mail_states(config.parent) == [("retry", "desk-public", None)]
    assert once(config) == 0
    first, second = smtp_sink.received
    message_ids = [email.message_from_bytes(r.data, policy=email.policy.compat32)["Message-ID"]
                   for r in (first, second)]
    assert message_ids[0] == message_ids[1]
    assert dovecot.messages(imap_user, "INBOX") == []


def test_same_mail_delivered_twice_with_other_received_lines_is_forwarded_once(config, dovecot, imap_user,
                                                                                 smtp_sink):
    """A mail delivered again (another Received line, same Message-ID, sender and subject) is a duplicate."""
    dovecot.append(imap_user, "INBOX", APPLICATION)
    dovecot.append(imap_user, "INBOX", b"Received: from alias.example by mx; Mon, 02 Mar 2026 09:13:00 +0100\r\n"
                   + APPLICATION)
    assert once(config) == 0
    assert len(smtp_sink.received) == 1
    assert len(dovecot.messages(imap_user, "Processed")) == 2
    duplicates = [detail for _, event, detail in audit_events(config.parent) if event == "mail.duplicate"]
    assert duplicates[0]["same"] == "message-id, sender and subject"


def test_different_mails_claiming_one_message_id_get_different_forward_ids(config, dovecot, imap_user, smtp_sink):
    """Two different mails with the same Message-ID are both forwarded, under different Message-IDs."""
    dovecot.append(imap_user, "INBOX", APPLICATION)
    dovecot.append(imap_user, "INBOX", APPLICATION.replace(b"Subject: Bewerbung Cluster-Expertengruppe",
                                                           b"Subject: Nachtrag zur Bewerbung"))
    assert once(config) == 0
    ids = {email.message_from_bytes(r.data, policy=email.policy.compat32)["Message-ID"] for r in smtp_sink.received}
    assert len(smtp_sink.received) == 2 and len(ids) == 2


def test_waiting_mail_moved_away_and_back_is_found_again(tmp_path, dovecot, imap_user, smtp_sink):
    """A mail waiting for its retry that gets a new UID is re-keyed at once and sent when due."""
    config = write_config(tmp_path, dovecot, imap_user, smtp_sink, schedule="retry_min_seconds = 3600")
    dovecot.append(imap_user, "INBOX", APPLICATION)
    smtp_sink.reject_next(1, code=451)
    assert once(config) == 0
    _move_out_and_back(dovecot, imap_user)
    dovecot.append(imap_user, "INBOX", AUTO_REPLY)  # a later mail moves the UID position past it
    assert once(config) == 0 and smtp_sink.received == []
    make_retries_due(tmp_path)
    assert once(config) == 0
    assert len(smtp_sink.received) == 1 and dovecot.messages(imap_user, "INBOX") == []


def test_copy_of_a_mail_waiting_for_retry_is_not_forwarded_again(config, dovecot, imap_user, smtp_sink):
    """The same mail through a second alias, while the first waits for a retry, is archived, not sent."""
    dovecot.append(imap_user, "INBOX", APPLICATION)
    smtp_sink.reject_next(1, code=451)
    assert once(config) == 0
    dovecot.append(imap_user, "INBOX", b"Received: from alias by mx; Mon, 02 Mar 2026 09:14:00 +0100\r\n" + APPLICATION)
    assert once(config) == 0
    assert len(smtp_sink.received) == 1 and dovecot.messages(imap_user, "INBOX") == []


def test_a_transport_error_costs_one_mail_not_the_poll(config, dovecot, imap_user, smtp_sink, monkeypatch):
    """An unexpected exception while sending one forward quarantines that mail; the next is forwarded."""
    from mailrelay.transports.smtp import SmtpSession

    original = SmtpSession.send

    def failing_for_the_ministry(self, forward):
        if forward.desk == "desk-public":
            raise UnicodeEncodeError("ascii", "ü", 0, 1, "simulated")
        return original(self, forward)

    monkeypatch.setattr(SmtpSession, "send", failing_for_the_ministry)
    dovecot.append(imap_user, "INBOX", APPLICATION)
    dovecot.append(imap_user, "INBOX", (MAILS / "02-application-research-institute.eml").read_bytes())
    assert once(config) == 0
    assert [r.rcpt_tos for r in forwards(smtp_sink)] == [("desk-experts@bmwi.example",)]
    assert len(dovecot.messages(imap_user, "Quarantine")) == 1 and len(alerts(smtp_sink)) == 1


def test_flood_brake_pauses_forwarding_until_resumed(tmp_path, dovecot, imap_user, smtp_sink):
    """More forwards in one poll than allowed pauses forwarding with an alert; `resume` lets the rest go."""
    from mailrelay.cli import main

    config = write_config(tmp_path, dovecot, imap_user, smtp_sink)
    config.write_text(config.read_text().replace('id = "test-relay"',
                                                 'id = "test-relay"\nmax_forwards_per_poll = 2'))
    for number in range(4):
        dovecot.append(imap_user, "INBOX", APPLICATION.replace(b"<demo-01@", f"<flood-{number}@".encode()))
    assert once(config) == 0
    assert len(forwards(smtp_sink)) == 2 and len(alerts(smtp_sink)) == 1
    assert b"mailrelay resume" in alerts(smtp_sink)[0].data
    assert once(config) == 0  # paused: nothing fetched, nothing sent
    assert len(forwards(smtp_sink)) == 2 and len(dovecot.messages(imap_user, "INBOX")) == 2
    assert main(["--config", str(config), "resume"]) == 0
    assert once(config) == 0
    assert len(forwards(smtp_sink)) == 4 and dovecot.messages(imap_user, "INBOX") == []
    events = [event for _, event, _ in audit_events(tmp_path)]
    assert "relay.paused" in events and "relay.resumed" in events


def test_flag_mode_keeps_handled_mail_in_the_inbox_marked(tmp_path, dovecot, imap_user, smtp_sink):
    """archive = "flag": forwarded and ignored mail stay in the inbox with a keyword and are not
    fetched again; only quarantine is still a move."""
    config = write_config(tmp_path, dovecot, imap_user, smtp_sink)
    config.write_text(config.read_text().replace('password_file = "imap.secret"',
                                                 'password_file = "imap.secret"\narchive = "flag"'))
    dovecot.append(imap_user, "INBOX", APPLICATION)
    dovecot.append(imap_user, "INBOX", AUTO_REPLY)
    assert once(config) == 0 and once(config) == 0
    assert len(forwards(smtp_sink)) == 1
    with dovecot.client(imap_user) as client:
        client.select_folder("INBOX", readonly=True)
        flags = sorted(flag for item in client.get_flags(client.search("ALL")).values() for flag in item
                       if flag.startswith(b"$"))
    assert flags == [b"$Forwarded", b"$MailrelayIgnored"]
    assert mail_states(tmp_path) == [("forwarded", "desk-public", "INBOX ($Forwarded)"),
                                     ("ignored", "none", "INBOX ($MailrelayIgnored)")]


def test_lines_starting_with_a_dot_arrive_intact(config, dovecot, imap_user, smtp_sink):
    """SMTP dot-stuffing: a line of only "." or starting with "." in the original does not end the DATA early
    and reaches the desk as it was."""
    mail = APPLICATION.replace(b"Sehr geehrte", b".\n..zwei Punkte\n.ein Punkt\nSehr geehrte", 1)
    assert b"\n.\n" in mail
    dovecot.append(imap_user, "INBOX", mail)
    assert once(config) == 0
    [received] = forwards(smtp_sink)
    assert b"\r\n.\r\n..zwei Punkte\r\n.ein Punkt\r\n" in received.data
