"""The people's commands on a shared PostgreSQL state: the same commands, the same answers."""
from __future__ import annotations

import json

import psycopg

from mailrelay.cli import main
from mailrelay.state.postgres import PostgresStore
from tests.nodes import maildir_config

APPLICATION = b"""From: Anna Beispiel <anna@uni-beispiel.de>\r
To: info@clusterplattform.de\r
Subject: Bewerbung Expertengruppe\r
Message-ID: <shared-1@uni-beispiel.de>\r
Date: Mon, 30 Nov 2026 10:00:00 +0100\r
\r
Sehr geehrte Damen und Herren, hiermit bewerbe ich mich.\r
"""


def test_once_status_resume_purge_and_the_queues_work_on_the_shared_state(tmp_path, postgres_url, capsys):
    config = maildir_config(tmp_path, postgres_url)
    for folder in ("new", "cur", "tmp"):
        (tmp_path / "maildir" / folder).mkdir(parents=True)
    (tmp_path / "maildir" / "new" / "1.eml").write_bytes(APPLICATION)
    assert main(["--config", str(config), "once"]) == 0
    assert len(list((tmp_path / "outbox").iterdir())) == 1
    with psycopg.connect(postgres_url) as db:
        assert db.execute("SELECT state FROM mails").fetchall() == [("forwarded",)]
        assert db.execute("SELECT epoch, holder, renewed FROM lease").fetchone()[:2] == (1, "node-a")
    capsys.readouterr()

    # No node holds the lease now (once gave it back): every node's status says so.
    assert main(["--config", str(config), "status", "--json"]) == 2
    report = json.loads(capsys.readouterr().out)
    assert report["role"] == "standby" and report["lease"]["epoch"] == 1
    assert any("kein Knoten ist aktiv" in problem for problem in report["problems"])

    store = PostgresStore(postgres_url)
    store.pause("Test")
    store.close()
    assert main(["--lang", "en", "--config", str(config), "resume"]) == 0
    assert "resumed (was paused: Test)" in capsys.readouterr().out
    assert main(["--config", str(config), "purge"]) == 0
    assert "0 Mail(s)" in capsys.readouterr().out  # finished a moment ago: kept
    assert main(["--config", str(config), "quarantine", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["--config", str(config), "audit", "show", "<shared-1@uni-beispiel.de>"]) == 0
    assert "mail.forwarded" in capsys.readouterr().out
    assert main(["--config", str(config), "audit", "verify"]) == 0


def test_once_refuses_while_another_node_holds_the_lease(tmp_path, postgres_url, capsys):
    from mailrelay.state.lease import Lease
    from mailrelay.state.postgres import PostgresStore

    store = PostgresStore(postgres_url)
    other = Lease(postgres_url, "node-b", 30, prepare=store.prepare)
    assert other.acquire_once()
    try:
        config = maildir_config(tmp_path, postgres_url)
        (tmp_path / "maildir" / "new").mkdir(parents=True)
        assert main(["--lang", "en", "--config", str(config), "once"]) != 0
        assert "node-b" in capsys.readouterr().err
    finally:
        other.release()
        store.close()
