"""Loading and validating the operators' main config file."""
from __future__ import annotations

import socket

import pytest

from mailrelay.config import Secret, check_secrets, exposed_secrets, load_settings
from mailrelay.i18n import set_language
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


# [state] url: the shared PostgreSQL store

STATE_URL = 'url = "postgresql://relay@db.example/mailrelay"'


def _with_state(tmp_path, state: str):
    """The path of GOOD with this [state] table; its first key is on the line after the header."""
    path = tmp_path / "mailrelay.toml"
    path.write_text(GOOD + "\n[state]\n" + state + "\n", encoding="utf-8")
    return path


def _state_problems(tmp_path, state: str) -> list:
    with pytest.raises(ConfigError) as caught:
        load_settings(_with_state(tmp_path, state))
    return list(caught.value.problems)


STATE_LINE = GOOD.count("\n") + 3  # GOOD, a blank line, [state]: the first key of the table


def test_sqlite_is_the_default_state_store(tmp_path):
    """Without url the state is the SQLite file, the node is named after the host, the failover wait is 30 s."""
    settings = load_settings(_with_state(tmp_path, 'path = "state.sqlite"'))
    assert settings.state_url is None and settings.state_path == tmp_path / "state.sqlite"
    assert settings.state_password == Secret() and settings.state_ca_file is None
    assert (settings.failover_seconds, settings.node) == (30.0, socket.gethostname())


def test_a_state_url_yields_the_shared_store_settings(tmp_path):
    """url, password_file, ca_file (beside the config), failover_seconds and node become the Settings fields."""
    (tmp_path / "state.secret").write_text("db-s3cret\n", encoding="utf-8")
    settings = load_settings(_with_state(tmp_path, STATE_URL + '\npassword_file = "state.secret"\n'
                                         'ca_file = "db-ca.pem"\nfailover_seconds = 12\nnode = "relay-2"'))
    assert settings.state_url == "postgresql://relay@db.example/mailrelay"
    assert settings.state_password.read() == "db-s3cret"
    assert settings.state_ca_file == tmp_path / "db-ca.pem"
    assert settings.failover_seconds == 12.0 and isinstance(settings.failover_seconds, float)
    assert settings.node == "relay-2"


def test_the_state_password_comes_from_the_credentials_directory_or_a_variable(tmp_path, monkeypatch):
    """A relative password_file is looked up in $CREDENTIALS_DIRECTORY first; password_env names a variable."""
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "state.secret").write_text("from-systemd", encoding="utf-8")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    settings = load_settings(_with_state(tmp_path, STATE_URL + '\npassword_file = "state.secret"'))
    assert settings.state_password.read() == "from-systemd"
    monkeypatch.setenv("MAILRELAY_TEST_DB", "from-env")
    settings = load_settings(_with_state(tmp_path, STATE_URL + '\npassword_env = "MAILRELAY_TEST_DB"'))
    assert settings.state_password.read() == "from-env"


def test_the_shipped_postgresql_example_is_valid_once_uncommented(tmp_path):
    """The commented-out [state] keys in config/mailrelay.toml load when written instead of path."""
    text = (REPO / "config" / "mailrelay.toml").read_text(encoding="utf-8")
    head, state = text.split("\n[state]\n")
    state, tail = state.split("\n[schedule]\n")
    keys = [line[2:] for line in state.splitlines() if line.startswith("# ") and " = " in line.split("#")[1]]
    assert [key.split(" =")[0] for key in keys] == ["url", "password_file", "ca_file", "failover_seconds", "node"]
    (tmp_path / "mailrelay.toml").write_text(f"{head}\n[state]\n" + "\n".join(keys) + f"\n[schedule]\n{tail}",
                                             encoding="utf-8")
    settings = load_settings(tmp_path / "mailrelay.toml")
    assert settings.state_url == "postgresql://relay@db.clusterplattform.example/mailrelay"
    assert settings.node == "relay-1" and settings.failover_seconds == 30.0


def test_url_and_path_together_are_refused(tmp_path):
    """The state is either the PostgreSQL database or the SQLite file: both is one problem, at url."""
    [problem] = _state_problems(tmp_path, 'path = "state.sqlite"\n' + STATE_URL)
    assert problem.line == STATE_LINE + 1
    assert problem.message.startswith("url oder path angeben, nicht beides")


@pytest.mark.parametrize("url", ["mysql://relay@db.example/mailrelay", "db.example/mailrelay",
                                 "postgresql:/db.example/mailrelay", "host=db.example dbname=mailrelay"])
def test_a_state_url_must_be_a_postgresql_url(tmp_path, url):
    """Anything but postgresql:// or postgres:// is one problem, with the form to write as the hint."""
    [problem] = _state_problems(tmp_path, f'url = "{url}"')
    assert (problem.line, problem.message) == (STATE_LINE, "url muss mit postgresql:// oder postgres:// beginnen")
    assert problem.hint == 'z. B. url = "postgresql://relay@db.example/mailrelay"'


def test_postgres_scheme_is_accepted_too(tmp_path):
    """postgres:// is libpq's other spelling of the scheme."""
    settings = load_settings(_with_state(tmp_path, 'url = "postgres://relay@db.example/mailrelay"'))
    assert settings.state_url == "postgres://relay@db.example/mailrelay"


@pytest.mark.parametrize("url", ["postgresql://relay:canary-pw@db.example/mailrelay",
                                 "postgresql://relay@db.example/mailrelay?password=canary-pw",
                                 "postgresql://db.example/mailrelay?user=relay&password=canary-pw"])
def test_a_password_in_the_state_url_is_refused_without_showing_it(tmp_path, url):
    """A password in the URL, before the host or as a parameter, is refused as in [imap]; it is shown nowhere."""
    [problem] = _state_problems(tmp_path, f'url = "{url}"')
    assert (problem.line, problem.message) == (STATE_LINE, "ein Passwort gehört nicht in die Konfigurationsdatei")
    assert problem.hint == "password_file (oder ein systemd-Credential) oder password_env verwenden"
    assert "canary-pw" not in str(problem)


def test_a_state_url_that_cannot_be_parsed_is_named(tmp_path):
    """A URL libpq would not read is one problem saying why, at its line."""
    [problem] = _state_problems(tmp_path, 'url = "postgresql://relay@db.example/mailrelay?colour=blue"')
    assert problem.line == STATE_LINE
    assert problem.message.startswith("die url kann nicht gelesen werden: ") and "colour" in problem.message


def test_an_unreadable_state_url_with_a_password_does_not_show_it(tmp_path):
    """A URL that cannot be read and holds a password: both said, the password (in the parser's words) not."""
    problems = _state_problems(tmp_path, 'url = "postgresql://relay:canary%pw@db.example/mailrelay"')
    assert [(p.line, p.message) for p in problems] == [
        (STATE_LINE, "die url kann nicht gelesen werden"),
        (STATE_LINE, "ein Passwort gehört nicht in die Konfigurationsdatei")]
    assert "canary" not in "\n".join(map(str, problems))


@pytest.mark.parametrize("url", ["postgresql://relay@db.example/mailrelay?sslmode=require",
                                 "postgresql://relay@db.example/mailrelay?sslmode=disable",
                                 "postgresql://relay@127.0.0.1,db.example/mailrelay?sslmode=verify-ca"])
def test_a_state_url_to_a_remote_host_must_verify_its_certificate(tmp_path, url):
    """An sslmode other than verify-full to a host that is not loopback is one problem, with what to write."""
    [problem] = _state_problems(tmp_path, f'url = "{url}"')
    assert problem.line == STATE_LINE
    assert problem.message.endswith(": ohne Zertifikatsprüfung nur zu einer Loopback-Adresse")
    assert problem.hint == "sslmode=verify-full angeben oder weglassen: das Relay setzt verify-full selbst"


@pytest.mark.parametrize("url", ["postgresql://relay@db.example/mailrelay?sslmode=verify-full",
                                 "postgresql://relay@127.0.0.1:5433/mailrelay?sslmode=disable",
                                 "postgresql://relay@[::1]/mailrelay?sslmode=disable",
                                 "postgresql://relay@localhost/mailrelay?sslmode=prefer",
                                 "postgresql://relay@%2Frun%2Fpostgresql/mailrelay?sslmode=disable",
                                 "postgresql:///mailrelay?host=/run/postgresql&sslmode=disable"])
def test_a_state_url_may_skip_certificates_only_on_this_machine(tmp_path, url):
    """verify-full anywhere; a weaker sslmode to a loopback address or a Unix socket."""
    assert load_settings(_with_state(tmp_path, f'url = "{url}"')).state_url == url


@pytest.mark.parametrize("seconds", ["1", "1.5", "601", "0", "-30"])
def test_failover_seconds_must_lie_between_2_and_600(tmp_path, seconds):
    """A failover wait outside 2..600 seconds is one problem at its line."""
    [problem] = _state_problems(tmp_path, f"{STATE_URL}\nfailover_seconds = {seconds}")
    assert (problem.line, problem.message) == (
        STATE_LINE + 1, f"failover_seconds muss zwischen 2 und 600 liegen, nicht {seconds}")


def test_failover_seconds_takes_the_bounds_and_fractions(tmp_path):
    """2, 600 and 2.5 are all accepted, as floats."""
    for seconds in (2, 600, 2.5):
        settings = load_settings(_with_state(tmp_path, f"{STATE_URL}\nfailover_seconds = {seconds}"))
        assert settings.failover_seconds == float(seconds)


def test_failover_seconds_must_be_a_number(tmp_path):
    """Written as text it is named as such, with the number to write."""
    [problem] = _state_problems(tmp_path, f'{STATE_URL}\nfailover_seconds = "30"')
    assert (problem.line, problem.hint) == (STATE_LINE + 1, "ohne Anführungszeichen: failover_seconds = 30")


def test_the_database_keys_without_url_are_refused_each_at_its_line(tmp_path):
    """password_file, password_env, ca_file and failover_seconds with the SQLite file: one problem each."""
    problems = _state_problems(tmp_path, 'path = "state.sqlite"\npassword_file = "state.secret"\n'
                               'password_env = "DB_PASSWORD"\nca_file = "ca.pem"\nfailover_seconds = 30')
    assert [(p.line, p.message) for p in problems] == [
        (STATE_LINE + 1, "password_file gilt nur mit url (der PostgreSQL-Datenbank)"),
        (STATE_LINE + 2, "password_env gilt nur mit url (der PostgreSQL-Datenbank)"),
        (STATE_LINE + 3, "ca_file gilt nur mit url (der PostgreSQL-Datenbank)"),
        (STATE_LINE + 4, "failover_seconds gilt nur mit url (der PostgreSQL-Datenbank)")]


def test_a_password_key_in_state_is_refused(tmp_path):
    """`password` in [state] is refused as in [imap], without its value; `node` applies with SQLite too."""
    problems = _state_problems(tmp_path, 'node = "relay-1"\npassword = "canary-pw"')
    assert [(p.line, p.message) for p in problems] == [
        (STATE_LINE + 1, "ein Passwort gehört nicht in die Konfigurationsdatei")]
    assert "canary-pw" not in str(problems[0])


def test_an_empty_node_name_is_refused(tmp_path):
    """node = "" would leave the lease without a name: one problem at its line."""
    [problem] = _state_problems(tmp_path, 'node = " "')
    assert (problem.line, problem.message) == (STATE_LINE, "node darf nicht leer sein")


def test_state_url_problems_are_said_in_english_on_request(tmp_path):
    """The same rules, in English."""
    set_language("en")
    problems = _state_problems(tmp_path, 'url = "postgresql://relay@db.example/m?sslmode=require"\n'
                               'path = "s.sqlite"\nfailover_seconds = 900')
    assert [(p.line, p.message) for p in problems] == [
        (STATE_LINE, "give url or path, not both: url names the PostgreSQL database, path the SQLite file"),
        (STATE_LINE, "sslmode=require: connections without certificate checks only to a loopback address"),
        (STATE_LINE + 2, "failover_seconds must be between 2 and 600, not 900")]


def test_check_secrets_covers_the_state_password(tmp_path, monkeypatch):
    """A missing state password file, an unset password_env, are each named at their line in [state];
    a state password file others can read is warned about."""
    (tmp_path / "imap.secret").write_text("s3cret\n", encoding="utf-8")
    (tmp_path / "imap.secret").chmod(0o600)
    missing = tmp_path / "missing.secret"
    settings = load_settings(_with_state(tmp_path, f'{STATE_URL}\npassword_file = "{missing}"'))
    assert [(p.line, p.message) for p in check_secrets(settings)] == [
        (STATE_LINE + 1, f"die Passwortdatei {missing} gibt es nicht")]
    monkeypatch.delenv("MAILRELAY_TEST_UNSET", raising=False)
    settings = load_settings(_with_state(tmp_path, f'{STATE_URL}\npassword_env = "MAILRELAY_TEST_UNSET"'))
    assert [(p.line, p.message) for p in check_secrets(settings)] == [
        (STATE_LINE + 1, "die Umgebungsvariable MAILRELAY_TEST_UNSET (password_env) ist nicht gesetzt")]
    shared = tmp_path / "state.secret"
    shared.write_text("db-s3cret\n", encoding="utf-8")
    shared.chmod(0o644)
    settings = load_settings(_with_state(tmp_path, f'{STATE_URL}\npassword_file = "{shared}"'))
    assert check_secrets(settings) == []
    assert exposed_secrets(settings) == [f"{shared} können auch andere lesen (Modus 644); chmod 600 {shared}"]
