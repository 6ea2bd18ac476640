"""`mailrelay audit`: verify the hash chain, list, show and export, over a SQLite file its store wrote and
over a PostgreSQL database written as its store writes one."""
from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from mailrelay.cli import main
from mailrelay.state import event_hash
from mailrelay.state.sqlite import SqliteStore
from tests.helpers import REPO
from tests.relaytest import closed_port
from tests.trailtest import PostgresBackend, PostgresWriter, SqliteBackend

Backend = SqliteBackend | PostgresBackend
Store = SqliteStore | PostgresWriter

EVIDENCE = [
    {"field": "kind", "value": "application", "signal": "kind.application 'beworben'", "where": "body line 3",
     "weight": 1.0},
    {"field": "sender", "value": "public_body", "signal": "sender.public_body 'Ministerium'",
     "where": "signature line 3", "weight": 1.0},
]


@dataclass(frozen=True)
class Trail:
    """A state store with four mails and a relay event, and the config that names it."""

    config: Path
    backend: Backend
    application: int
    bounce: int
    inquiry: int
    same_message_id: int


def _decide(store: Store, mail_id: int, kind: str, route: str, rule: str, action: str = "forward") -> None:
    """Record a decision the way the runner does: the columns and a mail.decided event with the evidence."""
    classification = {"kind": kind, "sender": "public_body", "level": "regional", "country": "DE",
                      "confidence": 0.8, "unauthenticated": []}
    detail = {"action": action, "route": route, "rule": rule, "reason": "", "rules_version": "v1",
              "classification": classification, "evidence": EVIDENCE}
    store.update(mail_id, "mail.decided", detail, route=route, rule=rule, rules_version="v1", state="decided",
                 kind=kind, sender="public_body", level="regional", country="DE")


def _forward(store: Store, mail_id: int, desk: str) -> None:
    store.update(mail_id, "mail.sending", {"desk": desk, "message_id": f"<fwd-{mail_id}@relay>"}, state="sending")
    store.update(mail_id, "mail.forwarded", {"desk": desk, "recipients": [f"{desk}@bmwi.example"],
                                             "reply": "250 2.0.0 queued as 4711", "refused": []},
                 state="forwarded", forwarded_at="2026-11-28T05:35:26.000+00:00")
    store.update(mail_id, "mail.archived", {"mailbox": "Processed"}, archived_to="Processed")


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request, tmp_path: Path) -> Backend:
    """Each store in turn; PostgreSQL's server starts only for the tests that ask for it."""
    if request.param == "sqlite":
        return SqliteBackend(tmp_path)
    return PostgresBackend(tmp_path, request.getfixturevalue("postgres_url"))


def _config(folder: Path, state_table: str) -> Path:
    config = folder / "mailrelay.toml"
    config.write_text(f'[maildir]\npath = "inbox"\n\n[outbox]\npath = "outbox"\n\n[state]\n{state_table}\n'
                      '[relay]\nfrom_address = "relay@clusterplattform.example"\n', encoding="utf-8")
    return config


@pytest.fixture
def trail(tmp_path: Path, backend: Backend) -> Trail:
    store = backend.store()
    application = store.add_mail("a1" * 32, "<a1@wirtschaft.example.de>", "maildir:1",
                                 "Sabine.Albrecht@Wirtschaft.Example.de", "Bewerbung Cluster-Expertengruppe", b"raw 1")
    _decide(store, application, "application", "desk-public", "public-body-germany")
    _forward(store, application, "desk-public")
    bounce = store.add_mail("b2" * 32, "<b2@mx.example.net>", "maildir:2", "mailer-daemon@mx.example.net",
                            "Undelivered Mail Returned to Sender", b"raw 2")
    _decide(store, bounce, "bounce", "none", "machine-mail", action="ignore")
    store.update(bounce, "mail.ignored", {}, state="ignored")
    store.update(bounce, "mail.archived", {"mailbox": "Ignored"}, archived_to="Ignored")
    inquiry = store.add_mail("c3" * 32, "<c3@example.org>", "maildir:3", "marta.novak@example.org",
                             "Question about the expert group", b"raw 3")
    _decide(store, inquiry, "inquiry", "editors", "inquiry")
    _forward(store, inquiry, "editors")
    store.pause("200 forwards in one poll")  # an event of the relay, not of a mail
    same = store.add_mail("d4" * 32, "<a1@wirtschaft.example.de>", "maildir:4", "someone@else.example",
                          "=HYPERLINK(\"http://x\")", b"raw 4")
    store.update(same, "mail.failed", {"key": "maildir:4", "error": "TemplateError: broken", "at": "render.py:9"},
                 state="quarantined", reason="TemplateError: broken")
    store.close()
    return Trail(_config(tmp_path, backend.state_table), backend, application, bounce, inquiry, same)


def _audit(trail: Trail, *arguments: str, lang: str = "en") -> int:
    return main(["--lang", lang, "--config", str(trail.config), "audit", *arguments])


def _events(trail: Trail) -> list[dict]:
    return trail.backend.execute("SELECT * FROM events ORDER BY id")


def _tamper(trail: Trail, statement: str, arguments: tuple = ()) -> None:
    """Change the state behind the relay's back, as someone with write access to it could."""
    trail.backend.execute(statement, arguments)


def _decided_id(trail: Trail, mail_id: int) -> int:
    return next(row["id"] for row in _events(trail) if row["mail_id"] == mail_id and row["event"] == "mail.decided")


def test_verify_speaks_german_by_default(trail, capsys):
    """Without --lang the verdict on an altered record is German, with the record's number."""
    altered = _decided_id(trail, trail.application)
    _tamper(trail, "UPDATE events SET detail = '{}' WHERE id = ?", (altered,))
    assert _audit(trail, "verify", lang="de") == 1
    assert capsys.readouterr().out.startswith(f"Prüfkette unterbrochen bei Eintrag {altered} (")


def test_verify_passes_on_an_untouched_trail(trail, capsys):
    """An untouched trail is intact; the count and the head are those of the file."""
    events = _events(trail)
    assert _audit(trail, "verify") == 0
    head = events[-1]["hash"][:16]
    assert capsys.readouterr().out.strip() == f"audit trail intact: {len(events)} records, head {head}"


def test_verify_names_the_record_whose_detail_was_altered(trail, capsys):
    """A detail changed in place breaks that record's own hash: verify names it and exits 1."""
    altered = _decided_id(trail, trail.application)
    _tamper(trail, "UPDATE events SET detail = replace(detail, 'desk-public', 'desk-experts') WHERE id = ?", (altered,))
    assert _audit(trail, "verify") == 1
    out = capsys.readouterr().out
    assert out.startswith(f"audit trail broken at record {altered} (") and "mail.decided): its contents" in out


def test_verify_names_the_records_removed_from_the_middle(trail, capsys):
    """Deleted records leave a gap in the ids: verify names the missing range, and only that (the record
    after the gap chains to a hash that is gone, so it cannot be called altered)."""
    left = len(_events(trail)) - 2
    _tamper(trail, "DELETE FROM events WHERE id IN (5, 6)")
    assert _audit(trail, "verify") == 1
    assert capsys.readouterr().out == f"audit trail broken: records 5-6 are missing\n({left} records checked)\n"


def test_verify_names_the_next_record_when_an_altered_one_was_rehashed(trail, capsys):
    """Someone who alters a record and recomputes its hash cannot recompute the next one's without
    rewriting the rest: the next record is named."""
    altered = _decided_id(trail, trail.bounce)
    before, row = _events(trail)[altered - 2], _events(trail)[altered - 1]
    detail = row["detail"].replace('"machine-mail"', '"public-body-germany"')
    assert detail != row["detail"]
    _tamper(trail, "UPDATE events SET detail = ?, hash = ? WHERE id = ?",
            (detail, event_hash(before["hash"], row["at"], row["mail_id"], row["event"], detail), altered))
    assert _audit(trail, "verify") == 1
    out = capsys.readouterr().out
    assert out.startswith(f"audit trail broken at record {altered + 1} (") and "record before it" in out


def test_verify_names_a_record_without_a_hash_and_only_it(trail, capsys):
    """A record inserted without a hash is named; the one after it cannot be checked, so it is not blamed."""
    _tamper(trail, "UPDATE events SET hash = NULL WHERE id = 3")
    assert _audit(trail, "verify", "--json") == 1
    breaks = json.loads(capsys.readouterr().out)["breaks"]
    assert [(item["first"], item["problem"]) for item in breaks] == [(3, "unhashed")]
    assert breaks[0]["message"].endswith("it has no hash: it was written outside the relay")


def test_verify_notices_the_newest_records_deleted(trail, capsys):
    """A plain DELETE of the newest records still chains, but the store's count of the numbers it gave out
    remembers them (SQLite's AUTOINCREMENT counter, PostgreSQL's audit_head)."""
    last = _events(trail)[-1]["id"]
    _tamper(trail, "DELETE FROM events WHERE id >= ?", (last - 1,))
    assert _audit(trail, "verify", "--json") == 1
    verdict = json.loads(capsys.readouterr().out)
    assert verdict["intact"] is False and verdict["records"] == last - 2
    assert [(item["first"], item["last"], item["problem"]) for item in verdict["breaks"]] == [
        (last - 1, last, "truncated")]


def test_list_filters_by_sender_desk_kind_and_since(trail, capsys):
    """Each filter narrows the list, they combine with AND, and --sender ignores case."""
    def listed(*filters: str) -> list[int]:
        assert _audit(trail, "list", "--json", *filters) == 0
        return [mail["id"] for mail in json.loads(capsys.readouterr().out)["mails"]]

    month_ago = (datetime.now(timezone.utc) - timedelta(days=40)).isoformat(timespec="milliseconds")
    _tamper(trail, "UPDATE mails SET first_seen = ? WHERE id = ?", (month_ago, trail.inquiry))
    assert listed() == [trail.application, trail.bounce, trail.inquiry, trail.same_message_id]
    assert listed("--sender", "wirtschaft.EXAMPLE") == [trail.application]
    assert listed("--desk", "editors") == [trail.inquiry]
    assert listed("--kind", "bounce") == [trail.bounce]
    assert listed("--since", "30d") == [trail.application, trail.bounce, trail.same_message_id]
    assert listed("--since", month_ago[:10], "--kind", "inquiry") == [trail.inquiry]
    assert listed("--since", "30d", "--kind", "inquiry") == []
    assert listed("--sender", "example", "--desk", "none") == [trail.bounce]


def test_list_filters_by_state_and_review(trail, capsys):
    """--state picks the mails in one state; --review those sent to the editors for review, also once worked;
    --since takes weeks as every command does."""
    def listed(*filters: str) -> list[int]:
        assert _audit(trail, "list", "--json", *filters) == 0
        return [mail["id"] for mail in json.loads(capsys.readouterr().out)["mails"]]

    store = trail.backend.store()
    store.update(trail.inquiry, "queue.dropped", {"by": "Erika", "reason": "erledigt"}, queue="review",
                 queued_at="2026-11-28T05:35:26.000+00:00", queue_left="2026-11-29T08:00:00.000+00:00")
    store.close()
    assert listed("--state", "quarantined") == [trail.same_message_id]
    assert listed("--state", "forwarded") == [trail.application, trail.inquiry]
    assert listed("--review") == [trail.inquiry]
    assert listed("--review", "--state", "ignored") == []
    assert listed("--since", "1w", "--state", "ignored") == [trail.bounce]
    with pytest.raises(SystemExit) as exit_:
        _audit(trail, "list", "--state", "quarantine")
    assert exit_.value.code == 2 and "'quarantine' is not a state" in capsys.readouterr().err


def test_list_text_gives_one_line_per_mail(trail, capsys):
    """The text form has a header, one line per mail with state, kind, desk, sender and Message-ID, and a count."""
    assert _audit(trail, "list", "--desk", "desk-public") == 0
    header, line, count = capsys.readouterr().out.splitlines()
    assert header.startswith("first seen (UTC)") and count == "1 mail"
    assert line.split()[2:6] == ["forwarded", "application", "desk-public", "Sabine.Albrecht@Wirtschaft.Example.de"]
    assert line.endswith("<a1@wirtschaft.example.de>")


def test_list_refuses_an_unknown_kind_and_a_bad_since(trail, capsys):
    """A typo in a filter is a usage error, not an empty list."""
    for filters in (("--kind", "applicaton"), ("--since", "30 days")):
        with pytest.raises(SystemExit) as exit_:
            _audit(trail, "list", *filters)
        assert exit_.value.code == 2
    assert "'applicaton' is not a kind" in capsys.readouterr().err


def test_show_tells_the_story_with_rule_evidence_desk_and_mailbox(trail, capsys):
    """`show` without angle brackets gives the metadata and every event, with rule, evidence and archive."""
    assert _audit(trail, "show", "b2@mx.example.net") == 0
    out = capsys.readouterr().out
    assert out.startswith(f"mail {trail.bounce}: <b2@mx.example.net>")
    assert "not forwarded, by rule machine-mail (rules v1)" in out
    assert "mail.decided     ignore -> none by rule machine-mail" in out
    assert "evidence sender = public_body: sender.public_body 'Ministerium' [signature line 3, weight 1.0]" in out
    assert "mail.archived    to Ignored" in out
    events = [line.split()[2] for line in out.split("events:\n")[1].splitlines() if line[2:4] == "20"]
    assert events == ["mail.received", "mail.decided", "mail.ignored", "mail.archived"]


def test_show_gives_every_mail_that_shares_a_message_id(trail, capsys):
    """Two mails with one Message-ID are both shown: the forwarded one and the one that failed."""
    assert _audit(trail, "show", "<a1@wirtschaft.example.de>", "--json") == 0
    stories = json.loads(capsys.readouterr().out)["mails"]
    assert [story["mail"]["id"] for story in stories] == [trail.application, trail.same_message_id]
    forwarded = next(event for event in stories[0]["events"] if event["event"] == "mail.forwarded")
    assert forwarded["detail"]["recipients"] == ["desk-public@bmwi.example"]
    assert [event["event"] for event in stories[1]["events"]] == ["mail.received", "mail.failed"]


def test_show_accepts_a_mail_number_or_a_sha256_prefix_and_says_when_nothing_matches(trail, capsys):
    """A number or a sha256 prefix finds the mail; an unknown id exits 1 with a message."""
    assert _audit(trail, "show", str(trail.inquiry)) == 0
    assert "to desk editors, by rule inquiry" in capsys.readouterr().out
    assert _audit(trail, "show", "c3c3c3c3") == 0
    assert capsys.readouterr().out.startswith(f"mail {trail.inquiry}: <c3@example.org>")
    assert _audit(trail, "show", "<nobody@nowhere>") == 1
    assert "no mail with Message-ID" in capsys.readouterr().err


def test_export_csv_has_one_row_per_record_that_the_hash_still_covers(trail, capsys):
    """CSV: a row per event with its mail's fields and hash; the detail is the text the hash covers."""
    events = _events(trail)
    assert _audit(trail, "export", "--format", "csv") == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == len(events) and [row["hash"] for row in rows] == [event["hash"] for event in events]
    previous = "0" * 64
    for row in rows:
        mail_id = int(row["mail_id"]) if row["mail_id"] else None
        assert event_hash(previous, row["at"], mail_id, row["event"], row["detail"]) == row["hash"]
        previous = row["hash"]
    paused = next(row for row in rows if row["event"] == "relay.paused")
    assert paused["mail_id"] == paused["message_id"] == ""
    assert rows[-1]["subject"] == "'=HYPERLINK(\"http://x\")"  # a sender's formula stays text in a spreadsheet


def test_export_jsonl_to_a_file_since_a_moment(trail, tmp_path, capsys):
    """JSON lines: one parsed object per event; --since leaves out older records; --output writes the file."""
    events = _events(trail)
    cut = events[4]["at"]
    # Older records, certainly before the cut (it breaks the chain; export does not check it).
    _tamper(trail, "UPDATE events SET at = '2020-01-01T00:00:00.000+00:00' WHERE id <= 4")
    target = tmp_path / "export.jsonl"
    assert _audit(trail, "export", "--format", "jsonl", "--since", cut, "--output", str(target)) == 0
    assert capsys.readouterr().out.strip() == f"{len(events) - 4} records written to {target}"
    lines = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert [line["id"] for line in lines] == [event["id"] for event in events[4:]]
    decided = next(line for line in lines if line["event"] == "mail.decided")
    assert decided["detail"]["evidence"] == EVIDENCE and decided["message_id"]


def test_a_missing_state_file_is_reported_and_not_created(tmp_path, capsys):
    """Without a state file each command says so and exits 1; nothing is created."""
    config = _config(tmp_path, 'path = "state.sqlite"\n')
    assert main(["--config", str(config), "audit", "verify"]) == 1
    assert "no state file at" in capsys.readouterr().err and not (tmp_path / "state.sqlite").exists()


def test_an_unreachable_state_database_is_reported(tmp_path, capsys):
    """A [state] url nothing answers at: the command says the database cannot be reached and exits 1."""
    (tmp_path / "state.password").write_text("secret\n", encoding="utf-8")
    config = _config(tmp_path, f'url = "postgresql://relay@127.0.0.1:{closed_port()}/mailrelay"\n'
                               'password_file = "state.password"\n')
    assert main(["--config", str(config), "audit", "list"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("mailrelay audit: die Zustandsdatenbank ist nicht erreichbar: ") and "secret" not in err


def test_a_state_database_without_the_tables_is_reported(tmp_path, postgres_url, capsys):
    """A database the relay never started on holds no trail: verify says so rather than calling it intact."""
    config = _config(tmp_path, PostgresBackend(tmp_path, postgres_url).state_table)
    assert main(["--lang", "en", "--config", str(config), "audit", "verify"]) == 1
    assert "the state database holds no audit trail (missing: mails, events, audit_head)" in capsys.readouterr().err


def test_the_trail_is_one_snapshot_while_the_relay_appends(trail):
    """Records appended while a trail is open are not seen by it, so verify and export agree on one state;
    the next trail sees them."""
    from mailrelay.audit import export_rows, open_trail_for, verify
    from mailrelay.config import load_settings

    settings = load_settings(trail.config)
    with open_trail_for(settings) as snapshot:
        before = verify(snapshot).records
        store = trail.backend.store()
        store.pause("a second pause")
        store.close()
        assert verify(snapshot).intact and verify(snapshot).records == before
        assert len(list(export_rows(snapshot, None))) == before
    with open_trail_for(settings) as later:
        assert verify(later).records == before + 1 and verify(later).intact


def test_the_audit_wiring_imports_no_work_for_help():
    """`mailrelay --help` builds the audit parser without importing the audit logic or the store."""
    code = ("import sys; from mailrelay.cli import _parser; _parser();"
            " print(sorted(m for m in sys.modules if m.startswith('mailrelay')))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "mailrelay.audit'" not in result.stdout and "mailrelay.state" not in result.stdout
    assert "mailrelay.auditcli" in result.stdout
