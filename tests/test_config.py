"""Loading and validating the operators' main config file."""
from __future__ import annotations

import pytest

from mailrelay.config import load_settings
from mailrelay.tomlcheck import ConfigError
from tests.helpers import REPO

GOOD = """\
rules = "routing.toml"

[imap]
host = "127.0.0.1"
port = 10993
username = "info"
password_file = "imap.secret"

[outbox]
path = "out"

[relay]
from_address = "relay@example.org"
"""


def test_example_config_loads():
    """The example config shipped in config/ is valid."""
    settings = load_settings(REPO / "config" / "mailrelay.toml")
    assert settings.imap.server.security == "tls" and settings.smtp.server.security == "starttls"
    assert settings.rules_path == (REPO / "config" / "routing.toml").resolve()


def test_paths_are_relative_to_the_config_file(tmp_path):
    """Relative paths in the config resolve against the config's folder, not the working directory."""
    (tmp_path / "mailrelay.toml").write_text(GOOD, encoding="utf-8")
    (tmp_path / "imap.secret").write_text("s3cret\n", encoding="utf-8")
    settings = load_settings(tmp_path / "mailrelay.toml")
    assert settings.outbox == tmp_path / "out"
    assert settings.imap.server.password.read() == "s3cret"
    assert settings.imap.server.port == 10993 and settings.imap.mailbox == "INBOX"


def test_credentials_directory_is_preferred_for_relative_password_files(tmp_path, monkeypatch):
    """Under systemd, a relative password_file is looked up in $CREDENTIALS_DIRECTORY first."""
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "imap.secret").write_text("from-systemd", encoding="utf-8")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    (tmp_path / "mailrelay.toml").write_text(GOOD, encoding="utf-8")
    assert load_settings(tmp_path / "mailrelay.toml").imap.server.password.read() == "from-systemd"


def test_every_problem_is_reported_with_file_and_line(tmp_path):
    """Unknown keys, a password in the file, plain text to a remote host and a bad type are all named."""
    text = GOOD.replace('port = 10993', 'prot = 10993\npassword = "hunter2"\nsecurity = "plain"\nhost = "mail.example.org"')
    text = text.replace('host = "127.0.0.1"\n', "").replace('[outbox]\npath = "out"', "[outbox]\npath = 3")
    path = tmp_path / "mailrelay.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    found = {(p.line, p.message) for p in caught.value.problems}
    assert (4, "unbekannter Schlüssel 'prot'") in found
    assert (5, "ein Passwort gehört nicht in die Konfigurationsdatei") in found
    assert (6, "unverschlüsselt (plain) nur zu einer Loopback-Adresse") in found
    assert (12, "'path' muss ein Text sein, hier steht eine ganze Zahl") in found
    assert "hunter2" not in str(caught.value)
    assert len(found) == 4


def test_a_source_and_a_transport_are_required(tmp_path):
    """A config with neither [imap] nor [maildir] is refused, saying what is missing."""
    path = tmp_path / "mailrelay.toml"
    path.write_text('[relay]\nfrom_address = "relay@example.org"\n[outbox]\npath = "o"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"genau eine Mailquelle nennen: \[imap\] oder \[maildir\]"):
        load_settings(path)
