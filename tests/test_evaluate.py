"""`evaluate` on labelled folders and `replay` over the mail the relay has handled."""
from __future__ import annotations

import json
import re
import shutil
from datetime import datetime, timezone

from mailrelay.cli import main
from tests.helpers import DATA, REPO
from tests.relaytest import once, write_config

CONFIG = REPO / "config" / "mailrelay.toml"
MAILS = REPO / "mailrelay" / "demo" / "mails"
LABELS = [
    ("application-research-institute-de.eml", "application", "research", None, "DE", "desk-experts"),
    ("inquiry-how-to-apply-en.eml", "inquiry", "unknown", None, "unknown", "editors"),
    ("bounce-dsn-multipart-report.eml", "bounce", "unknown", None, "unknown", "none"),
    # Labelled wrongly on purpose, so that the report has a misroute to show.
    ("application-public-body-county-de.eml", "application", "public_body", "local", "DE", "desk-experts"),
]


def _labelled_folder(tmp_path):
    folder = tmp_path / "labelled"
    folder.mkdir()
    with open(folder / "labels.jsonl", "w", encoding="utf-8") as labels:
        for name, kind, sender, level, country, route in LABELS:
            shutil.copy(DATA / name, folder / name)
            labels.write(json.dumps({"file": name, "kind": kind, "sender": sender, "level": level,
                                     "country": country, "route": route}) + "\n")
    return folder


def _json_output(capsys, *arguments: str) -> dict:
    assert main(["--config", str(CONFIG), *arguments, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_evaluate_reports_accuracy_confusion_and_misroutes(tmp_path, capsys):
    """Per-field accuracy, the route confusion matrix and each misroute with its rule and evidence."""
    summary = _json_output(capsys, "evaluate", str(_labelled_folder(tmp_path)))
    assert summary["mails"] == 4
    assert summary["accuracy"]["route"] == {"right": 3, "judged": 4, "accuracy": 0.75}
    assert summary["accuracy"]["sender"]["judged"] == 3  # the bounce is not judged for sender
    assert summary["confusion"]["desk-experts"] == {"desk-experts": 1, "desk-public": 1}
    [miss] = summary["misrouted"]
    assert (miss["file"], miss["expected"], miss["got"], miss["rule"]) == (
        "application-public-body-county-de.eml", "desk-experts", "desk-public", "public-body-germany")
    assert miss["wrong_fields"] == {}  # every field agrees with its label; the route label is the odd one
    assert miss["evidence"] and all(e["field"] in ("kind", "sender", "country") for e in miss["evidence"])
    assert summary["machine_forwarded"] == {"desk": [], "editors": []}
    assert (summary["person_mails"], summary["person_archived"], summary["machine_mails"]) == (3, [], 1)


def test_evaluate_against_other_rules_lists_the_route_changes(tmp_path, capsys):
    """With --against, the mails the other rules route differently, old and new route and rule."""
    other = tmp_path / "routing.toml"
    other.write_text((REPO / "config" / "routing.toml").read_text().replace(
        'when = { kind = "inquiry" }\ndesk = "editors"', 'when = { kind = "inquiry" }\ndesk = "ignore"'))
    summary = _json_output(capsys, "evaluate", str(_labelled_folder(tmp_path)), "--against", str(other))
    assert summary["diff"] == [{"mail": "inquiry-how-to-apply-en.eml", "old_route": "editors", "old_rule": "inquiry",
                                "new_route": "none", "new_rule": "inquiry"}]


def test_replay_shows_what_changed_rules_would_do_and_sends_nothing(tmp_path, dovecot, imap_user, smtp_sink,
                                                                    capsys):
    """Replay runs new rules over the stored raw mails: the changed routes are listed, nothing is sent."""
    config = write_config(tmp_path, dovecot, imap_user, smtp_sink)
    for name in ("01-application-state-ministry.eml", "02-application-research-institute.eml"):
        dovecot.append(imap_user, "INBOX", (MAILS / name).read_bytes())
    assert once(config) == 0
    sent = len(smtp_sink.received)
    changed = tmp_path / "changed.toml"
    changed.write_text((REPO / "config" / "routing.toml").read_text().replace(
        'sender = "public_body" }', 'sender = "public_body", level = "national" }'))
    capsys.readouterr()
    assert main(["--config", str(config), "replay", "--rules", str(changed), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["mails"] == 2
    [change] = result["diff"]
    assert (change["old_route"], change["new_route"], change["new_rule"]) == (
        "desk-public", "editors", "application-sender-unknown")
    assert change["sender"] == "sabine.albrecht@wirtschaft.niedersachsen.de"
    assert change["subject"] == "Bewerbung Cluster-Expertengruppe" and change["first_seen"].endswith("+00:00")
    assert len(smtp_sink.received) == sent
    assert main(["--config", str(config), "replay", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["diff"] == []
    assert main(["--config", str(config), "replay", "--since", "0m", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["mails"] == 0


def test_evaluate_text_report_is_german_by_default(tmp_path, capsys):
    """The accuracy report's headings, the safety figures and the misroutes read in German."""
    assert main(["--config", str(CONFIG), "evaluate", str(_labelled_folder(tmp_path))]) == 0
    text = capsys.readouterr().out
    assert text.startswith("E-Mails: 4\n\nFeld       richtig  bewertet    Anteil\n")
    assert "route            3         4     75.0%" in text
    assert "Mail von Menschen als automatische Mail archiviert: 0 von 3 (0.0%)" in text
    assert "automatische Mail weitergeleitet an ein Fachreferat: 0 von 1 (0.0%)" in text
    assert "Leitwege (Zeilen: Sollwert laut labels.jsonl, Spalten: was das Relay tut)" in text
    assert ("falsch geleitet: 1\n  application-public-body-county-de.eml: erwartet desk-experts, "
            "erhalten desk-public (Regel public-body-germany)") in text


def test_evaluate_against_text_is_english_with_lang_en(tmp_path, capsys):
    """With --lang en the report and the table of route changes are English."""
    other = tmp_path / "routing.toml"
    other.write_text((REPO / "config" / "routing.toml").read_text().replace(
        'when = { kind = "inquiry" }\ndesk = "editors"', 'when = { kind = "inquiry" }\ndesk = "ignore"'))
    assert main(["--config", str(CONFIG), "--lang", "en", "evaluate", str(_labelled_folder(tmp_path)),
                 "--against", str(other)]) == 0
    text = capsys.readouterr().out
    assert text.startswith("4 mails\n\nfield        right    judged  accuracy\n")
    assert text.endswith("1 of 4 mails would be routed differently\n  inquiry-how-to-apply-en.eml\n"
                         "      was editors (rule inquiry), now none (rule inquiry)\n")


def test_replay_lists_sender_subject_and_date_and_takes_every_since_form(tmp_path, dovecot, imap_user, smtp_sink,
                                                                          capsys):
    """The text names each changed mail by date, sender and subject, not by its number; --since takes a week
    or a date, and the note on raw mails kept for keep_raw_days appears for every form that reaches further."""
    config = write_config(tmp_path, dovecot, imap_user, smtp_sink)
    dovecot.append(imap_user, "INBOX", (MAILS / "01-application-state-ministry.eml").read_bytes())
    assert once(config) == 0
    changed = tmp_path / "changed.toml"
    changed.write_text((REPO / "config" / "routing.toml").read_text().replace(
        'sender = "public_body" }', 'sender = "public_body", level = "national" }'))
    capsys.readouterr()
    assert main(["--config", str(config), "replay", "--since", "1w", "--rules", str(changed)]) == 0
    out, err = capsys.readouterr()
    today = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    lines = out.splitlines()
    assert lines[0] == "1 von 1 E-Mails würden anders geleitet"
    assert re.fullmatch(rf'  {today} \d\d:\d\d UTC  sabine\.albrecht@wirtschaft\.niedersachsen\.de  '
                        r'"Bewerbung Cluster-Expertengruppe"', lines[1]), lines[1]
    assert lines[2] == ("      bisher desk-public (Regel public-body-germany), "
                        "neu editors (Regel application-sender-unknown)")
    assert err == ""
    for since in ("5w", "2000-01-01", "2000-01-01T00:00:00+02:00", "31d"):
        assert main(["--config", str(config), "replay", "--since", since, "--rules", str(changed)]) == 0
        out, err = capsys.readouterr()
        assert out.startswith("1 von 1") and err == (
            "Hinweis: Rohmails werden 30 Tage aufbewahrt; ältere lassen sich nicht erneut prüfen\n"), since
    assert main(["--config", str(config), "replay", "--since", today]) == 0
    assert capsys.readouterr() == ("0 von 1 E-Mails würden anders geleitet\n", "")
