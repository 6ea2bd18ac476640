"""The main TOML file -> frozen, fully validated settings; every problem reported at once."""
from __future__ import annotations

import ipaddress
import os
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path

from mailrelay.i18n import tr
from mailrelay.passwords import Secret, check_secrets, exposed_secrets  # noqa: F401  (the config's API)
from mailrelay.tomlcheck import ConfigError, Key, TomlFile

SECURITY_MODES = ("tls", "starttls", "plain")
_TOP_KEYS = ("rules", "signals", "templates", "reference", "imap", "maildir", "smtp", "outbox", "state", "schedule",
             "relay", "health", "metrics", "web")  # [metrics] is read by mailrelay.metrics, [web] by mailrelay.web


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    security: str
    ca_file: Path | None
    username: str | None
    password: Secret
    timeout: float


@dataclass(frozen=True)
class ImapSettings:
    server: Endpoint
    mailbox: str
    processed_mailbox: str
    ignored_mailbox: str
    quarantine_mailbox: str
    batch_size: int
    max_message_bytes: int = 25 * 1024 * 1024
    idle: bool = True  # wait for new mail with IDLE where the server offers it; the polls stay as a safety net
    idle_renew_seconds: float = 300  # IDLE is ended, the connection probed with NOOP and IDLE begun again
    archive: str = "move"  # "flag": handled mail stays in the inbox with a keyword; quarantine is still moved


@dataclass(frozen=True)
class SmtpSettings:
    server: Endpoint


@dataclass(frozen=True)
class Settings:
    path: Path
    rules_path: Path
    signals_path: Path
    templates_path: Path
    imap: ImapSettings | None
    maildir: Path | None
    smtp: SmtpSettings | None
    outbox: Path | None
    state_path: Path
    keep_raw_days: int
    poll_seconds: float
    retry_seconds: tuple[float, float]  # the first wait after a temporary failure, and the longest
    from_address: str
    relay_id: str
    max_forwards_per_sender_per_hour: int
    max_forwards_per_poll: int
    authserv_id: str
    max_forwards_per_thread_per_hour: int = 10
    outage_seconds: float = 1800
    quarantined_per_day: int = 10
    operators: tuple[str, ...] = ()  # who hears of outages; the alert desk when empty
    reference_path: Path | None = None  # the editors' additions to the reference data; None: shipped data only
    state_url: str | None = None  # the shared PostgreSQL store; None: the SQLite file at state_path
    state_password: Secret = field(default_factory=Secret)
    state_ca_file: Path | None = None
    failover_seconds: float = 30.0  # how long a standby node waits for a silent active node before taking over
    node: str = field(default_factory=socket.gethostname)  # this node's name in the lease and the status


def load_settings(path: Path) -> Settings:
    """Read and validate the main config file; raises ConfigError naming every problem."""
    doc = TomlFile.load(path)
    data = doc.data
    doc.check_keys(data, _TOP_KEYS)
    base = path.parent
    imap = _imap(doc, data["imap"]) if isinstance(data.get("imap"), dict) else None
    smtp = _smtp(doc, data["smtp"]) if isinstance(data.get("smtp"), dict) else None
    maildir = _single_path(doc, data, "maildir", base)
    outbox = _single_path(doc, data, "outbox", base)
    _exactly_one(doc, data, ("imap", "maildir"), ("Mailquelle", "mail source"))
    _exactly_one(doc, data, ("smtp", "outbox"), ("Zustellung", "transport"))
    relay = _table(doc, data, "relay")
    doc.check_keys(relay, ("from_address", "id", "max_forwards_per_sender_per_hour",
                           "max_forwards_per_thread_per_hour", "max_forwards_per_poll", "authserv_id"), ("relay",))
    per_poll = doc.get(relay, "max_forwards_per_poll", int, ("relay",), 200)
    _at_least_one(doc, ("relay", "max_forwards_per_poll"), per_poll)
    per_sender = doc.get(relay, "max_forwards_per_sender_per_hour", int, ("relay",), 10)
    _at_least_one(doc, ("relay", "max_forwards_per_sender_per_hour"), per_sender)
    per_thread = doc.get(relay, "max_forwards_per_thread_per_hour", int, ("relay",), 10)
    _at_least_one(doc, ("relay", "max_forwards_per_thread_per_hour"), per_thread)
    state = _table(doc, data, "state")
    doc.check_keys(state, _STATE_KEYS, ("state",))
    keep_raw_days = doc.get(state, "keep_raw_days", int, ("state",), 30)
    _at_least_one(doc, ("state", "keep_raw_days"), keep_raw_days)
    shared_state = _shared_state(doc, state)
    schedule = _table(doc, data, "schedule")
    doc.check_keys(schedule, ("poll_seconds", "retry_min_seconds", "retry_max_seconds"), ("schedule",))
    retry = tuple(doc.get(schedule, name, (int, float), ("schedule",), default)
                  for name, default in (("retry_min_seconds", 60), ("retry_max_seconds", 3600)))
    if None not in retry and not 0 <= retry[0] <= retry[1]:
        doc.problem(("schedule", "retry_max_seconds"),
                    tr("retry_min_seconds muss 0 oder mehr sein und höchstens so groß wie retry_max_seconds",
                       "retry_min_seconds must be 0 or more and at most retry_max_seconds"))
    poll_seconds = doc.get(schedule, "poll_seconds", (int, float), ("schedule",), 60)
    _at_least_one(doc, ("schedule", "poll_seconds"), poll_seconds)
    health = _table(doc, data, "health")
    doc.check_keys(health, ("outage_minutes", "quarantined_per_day", "operators"), ("health",))
    outage_minutes = doc.get(health, "outage_minutes", (int, float), ("health",), 30)
    if outage_minutes is not None and outage_minutes <= 0:
        doc.problem(("health", "outage_minutes"), tr("outage_minutes muss größer als 0 sein", "outage_minutes must be more than 0"))
    quarantined_per_day = doc.get(health, "quarantined_per_day", int, ("health",), 10)
    operators = doc.get(health, "operators", list, ("health",), [])
    for index, address in enumerate(operators or []):
        if not isinstance(address, str) or "@" not in address or not address.isascii():
            doc.problem(("health", "operators", index), _not_an_address(address),
                        tr('eine Liste von Adressen: operators = ["it-betrieb@example.org"]',
                           'a list of addresses: operators = ["it-betrieb@example.org"]'))
    from_address = doc.get(relay, "from_address", str, ("relay",))
    if from_address is not None and "@" not in from_address:
        doc.problem(("relay", "from_address"), _not_an_address(from_address),
                    tr('z. B. from_address = "mailrelay@example.org"', 'like from_address = "mailrelay@example.org"'))
    settings = Settings(
        path=path,
        rules_path=_relative(base, doc.get(data, "rules", str, (), _EDITOR_FILES[0][1])),
        signals_path=_relative(base, doc.get(data, "signals", str, (), _EDITOR_FILES[1][1])),
        templates_path=_relative(base, doc.get(data, "templates", str, (), _EDITOR_FILES[2][1])),
        reference_path=_optional_relative(base, doc.get(data, "reference", str, (), None)),
        imap=imap,
        maildir=maildir,
        smtp=smtp,
        outbox=outbox,
        state_path=_relative(base, doc.get(state, "path", str, ("state",), "mailrelay.sqlite")),
        keep_raw_days=keep_raw_days or 30,
        poll_seconds=float(poll_seconds or 60),
        retry_seconds=(float(retry[0] if retry[0] is not None else 60), float(retry[1] if retry[1] is not None else 3600)),
        from_address=(from_address or "").lower(),
        relay_id=doc.get(relay, "id", str, ("relay",), "mailrelay"),
        max_forwards_per_sender_per_hour=per_sender if per_sender is not None else 10,
        max_forwards_per_thread_per_hour=per_thread if per_thread is not None else 10,
        max_forwards_per_poll=per_poll if per_poll is not None else 200,
        authserv_id=doc.get(relay, "authserv_id", str, ("relay",), ""),
        outage_seconds=float(outage_minutes or 30) * 60,
        quarantined_per_day=quarantined_per_day if quarantined_per_day is not None else 10,
        operators=tuple(address for address in operators or [] if isinstance(address, str)),
        **shared_state,
    )
    doc.raise_if_problems()
    return settings


def editor_paths(path: Path) -> tuple[Path, Path, Path, Path | None] | None:
    """The rules, signals, templates and reference paths a main file names, even when other settings are wrong."""
    try:
        data = TomlFile.load(path).data
    except ConfigError:
        return None
    names = [data.get(key, default) for key, default in _EDITOR_FILES]
    reference = data.get("reference")
    if not all(isinstance(name, str) for name in names) or not isinstance(reference, (str, type(None))):
        return None
    rules, signals, templates = (_relative(path.parent, name) for name in names)
    return rules, signals, templates, _optional_relative(path.parent, reference)


_EDITOR_FILES = (("rules", "routing.toml"), ("signals", "signals.toml"), ("templates", "../templates"))


def _at_least_one(doc: TomlFile, key: Key, value: float | None) -> None:
    if value is not None and value < 1:
        doc.problem(key, tr(f"{key[-1]} muss mindestens 1 sein, nicht {value}", f"{key[-1]} must be at least 1, not {value}"))


def _not_an_address(value: object) -> str:
    return tr(f"'{value}' ist keine Mailadresse", f"'{value}' is not a mail address")


def _table(doc: TomlFile, data: dict, name: str) -> dict:
    value = data.get(name, {})
    if not isinstance(value, dict):
        doc.problem((name,), tr(f"'{name}' muss eine Tabelle sein", f"'{name}' must be a table"),
                    tr(f"als Überschrift: [{name}]", f"as a header: [{name}]"))
        return {}
    return value


def _relative(base: Path, value: str | None) -> Path:
    return (base / (value or "")).resolve()


def _optional_relative(base: Path, value: str | None) -> Path | None:
    return _relative(base, value) if value else None


def _single_path(doc: TomlFile, data: dict, name: str, base: Path) -> Path | None:
    if name not in data:
        return None
    table = _table(doc, data, name)
    doc.check_keys(table, ("path",), (name,))
    value = doc.get(table, "path", str, (name,))
    return _relative(base, value) if value else None


def _exactly_one(doc: TomlFile, data: dict, sections: tuple[str, str], what: tuple[str, str]) -> None:
    if any(doc.meant((), section) for section in sections) and not any(section in data for section in sections):
        return  # a misspelt [imap] is reported as that
    if (sections[0] in data) == (sections[1] in data):
        doc.problem((sections[1],) if sections[0] in data else (),
                    tr(f"die Konfiguration muss genau eine {what[0]} nennen: [{sections[0]}] oder [{sections[1]}]",
                       f"the config must name exactly one {what[1]}: [{sections[0]}] or [{sections[1]}]"))


# "password" is known only to be refused with a message that says what to do instead.
_ENDPOINT_KEYS = ("host", "port", "security", "ca_file", "username", "password", "password_file", "password_env",
                  "timeout")
_IMAP_KEYS = _ENDPOINT_KEYS + ("mailbox", "processed_mailbox", "ignored_mailbox", "quarantine_mailbox", "batch_size",
                                "max_message_bytes", "idle", "idle_renew_seconds", "archive")
_DEFAULT_PORTS = {"imap": {"tls": 993, "starttls": 143, "plain": 143}, "smtp": {"tls": 465, "starttls": 587, "plain": 25}}


def _imap(doc: TomlFile, table: dict) -> ImapSettings:
    doc.check_keys(table, _IMAP_KEYS, ("imap",))
    mailboxes = {
        name: doc.get(table, name, str, ("imap",), default)
        for name, default in (
            ("mailbox", "INBOX"),
            ("processed_mailbox", "Processed"),
            ("ignored_mailbox", "Ignored"),
            ("quarantine_mailbox", "Quarantine"),
        )
    }
    if len(set(mailboxes.values())) < len(mailboxes):
        doc.problem(("imap",), tr("mailbox, processed_mailbox, ignored_mailbox und quarantine_mailbox müssen "
                                  "verschiedene Ordner sein",
                                  "mailbox, processed_mailbox, ignored_mailbox and quarantine_mailbox must all differ"))
    batch_size = doc.get(table, "batch_size", int, ("imap",), 50)
    max_bytes = doc.get(table, "max_message_bytes", int, ("imap",), 25 * 1024 * 1024)
    idle = doc.get(table, "idle", bool, ("imap",), True)
    renew = doc.get(table, "idle_renew_seconds", (int, float), ("imap",), 300)
    if renew is not None and not 1 <= renew <= 1500:
        doc.problem(("imap", "idle_renew_seconds"), tr("idle_renew_seconds muss zwischen 1 und 1500 liegen",
                                                       "idle_renew_seconds must be between 1 and 1500"),
                    tr("Server dürfen ein IDLE nach 29 Minuten beenden; lange vorher erneuern, z. B. 300",
                       "servers may end an IDLE after 29 minutes; renew well before that, like 300"))
    archive = doc.get(table, "archive", str, ("imap",), "move")
    if archive not in (None, "move", "flag"):
        doc.problem(("imap", "archive"), tr(f"archive muss 'move' oder 'flag' sein, nicht '{archive}'",
                                            f"archive must be 'move' or 'flag', not '{archive}'"))
    return ImapSettings(_endpoint(doc, table, "imap"), batch_size=max(1, batch_size or 50),
                        max_message_bytes=max(1024, max_bytes or 0), idle=idle is not False,
                        idle_renew_seconds=float(renew or 300), archive=archive or "move", **mailboxes)


def _smtp(doc: TomlFile, table: dict) -> SmtpSettings:
    doc.check_keys(table, _ENDPOINT_KEYS, ("smtp",))
    return SmtpSettings(_endpoint(doc, table, "smtp"))


def _endpoint(doc: TomlFile, table: dict, section: str) -> Endpoint:
    key: Key = (section,)
    host = doc.get(table, "host", str, key) or ""
    security = doc.get(table, "security", str, key, "tls")
    if security not in SECURITY_MODES:
        doc.problem(key + ("security",), tr(f"security muss {', '.join(SECURITY_MODES)} sein, nicht '{security}'",
                                            f"security must be one of {', '.join(SECURITY_MODES)}, not '{security}'"))
        security = "tls"
    if security == "plain" and host and not is_loopback(host):
        doc.problem(key + ("security",), tr("unverschlüsselt (plain) nur zu einer Loopback-Adresse",
                                            "plain (unencrypted) connections are only allowed to a loopback address"),
                    tr("tls oder starttls verwenden", "use tls or starttls"))
    if "password" in table:
        _refuse_password(doc, key + ("password",))
    port = doc.get(table, "port", int, key, _DEFAULT_PORTS[section][security])
    ca_file = doc.get(table, "ca_file", str, key, None)
    base = doc.path.parent
    return Endpoint(
        host=host,
        port=port or 0,
        security=security,
        ca_file=_relative(base, ca_file) if ca_file else None,
        username=doc.get(table, "username", str, key, None),
        password=_secret(doc, table, key),
        timeout=float(doc.get(table, "timeout", (int, float), key, 60)),
    )


def _secret(doc: TomlFile, table: dict, key: Key) -> Secret:
    file_name = doc.get(table, "password_file", str, key, None)
    env = doc.get(table, "password_env", str, key, None)
    if file_name and env:
        doc.problem(key + ("password_env",), tr("password_file oder password_env angeben, nicht beides",
                                                "give password_file or password_env, not both"))
    if not file_name:
        return Secret(env=env)
    credentials = os.environ.get("CREDENTIALS_DIRECTORY")
    candidate = Path(file_name)
    if credentials and not candidate.is_absolute() and (Path(credentials) / candidate).exists():
        return Secret(file=Path(credentials) / candidate)
    return Secret(file=_relative(doc.path.parent, file_name))


def _refuse_password(doc: TomlFile, key: Key) -> None:
    doc.problem(key, tr("ein Passwort gehört nicht in die Konfigurationsdatei",
                        "a password must not be written into the config file"),
                tr("password_file (oder ein systemd-Credential) oder password_env verwenden",
                   "use password_file (or a systemd credential) or password_env"))


_URL_ONLY_KEYS = ("password_file", "password_env", "ca_file", "failover_seconds")
# "password" is known only to be refused, as in [imap].
_STATE_KEYS = ("path", "keep_raw_days", "url", "node", "password") + _URL_ONLY_KEYS
_URL_FORM = 'url = "postgresql://relay@db.example/mailrelay"'
# postgresql://user:password@host/db, or ...?password=...: seen in the text too, for a URL that cannot be parsed
_WRITTEN_PASSWORD = re.compile(r"^[a-z]+://[^/?#@]*:[^/?#@]*@|[?&]password=")


def _shared_state(doc: TomlFile, table: dict) -> dict:
    """The Settings fields for the shared PostgreSQL store ([state] url); with SQLite only `node` is read."""
    key: Key = ("state",)
    if "password" in table:
        _refuse_password(doc, key + ("password",))
    url = doc.get(table, "url", str, key, None)
    if url is None:
        _refuse_url_only_keys(doc, table)
        return {"node": _node(doc, table)}
    if "path" in table:
        doc.problem(key + ("url",), tr("url oder path angeben, nicht beides: url nennt die PostgreSQL-Datenbank, "
                                       "path die SQLite-Datei", "give url or path, not both: url names the "
                                       "PostgreSQL database, path the SQLite file"))
    _check_state_url(doc, url)
    ca_file = doc.get(table, "ca_file", str, key, None)
    return {"state_url": url, "state_password": _secret(doc, table, key), "node": _node(doc, table),
            "state_ca_file": _optional_relative(doc.path.parent, ca_file), "failover_seconds": _failover(doc, table)}


def _node(doc: TomlFile, table: dict) -> str:
    node = doc.get(table, "node", str, ("state",), None)
    if node is not None and not node.strip():
        doc.problem(("state", "node"), tr("node darf nicht leer sein", "node must not be empty"),
                    tr('weglassen (dann gilt der Rechnername) oder einen Namen angeben, z. B. node = "relay-1"',
                       'leave it out (the host name is used) or give a name, like node = "relay-1"'))
    return node or socket.gethostname()


def _failover(doc: TomlFile, table: dict) -> float:
    seconds = doc.get(table, "failover_seconds", (int, float), ("state",), 30.0)
    if seconds is not None and not 2 <= seconds <= 600:
        doc.problem(("state", "failover_seconds"),
                    tr(f"failover_seconds muss zwischen 2 und 600 liegen, nicht {seconds}",
                       f"failover_seconds must be between 2 and 600, not {seconds}"),
                    tr("so lange wartet ein Ersatzknoten auf den schweigenden aktiven Knoten, z. B. 30",
                       "how long a standby node waits for a silent active node, like 30"))
    return float(seconds if seconds is not None else 30.0)


def _refuse_url_only_keys(doc: TomlFile, table: dict) -> None:
    for name in _URL_ONLY_KEYS:
        if name in table:
            doc.problem(("state", name), tr(f"{name} gilt nur mit url (der PostgreSQL-Datenbank)",
                                            f"{name} applies only with url (the PostgreSQL database)"),
                        tr(f"{name} streichen, oder die Datenbank mit url nennen: {_URL_FORM}",
                           f"remove {name}, or name the database with url: {_URL_FORM}"))


def _check_state_url(doc: TomlFile, url: str) -> None:
    """A PostgreSQL URL without a password in it, verifying the server's certificate unless it is local.
    The URL is never shown: it may hold a password."""
    from psycopg import Error as PsycopgError
    from psycopg.conninfo import conninfo_to_dict

    key: Key = ("state", "url")
    if not url.startswith(("postgresql://", "postgres://")):
        doc.problem(key, tr("url muss mit postgresql:// oder postgres:// beginnen",
                            "url must begin with postgresql:// or postgres://"),
                    tr(f"z. B. {_URL_FORM}", f"like {_URL_FORM}"))
        return
    written_password = bool(_WRITTEN_PASSWORD.search(url))
    try:
        parts = conninfo_to_dict(url)
    except PsycopgError as error:
        detail = "" if written_password else f": {str(error).strip()}"
        doc.problem(key, tr(f"die url kann nicht gelesen werden{detail}", f"cannot read the url{detail}"),
                    tr(f"z. B. {_URL_FORM}", f"like {_URL_FORM}"))
        parts = {}
    if written_password or "password" in parts:
        _refuse_password(doc, key)
    sslmode = parts.get("sslmode")
    if sslmode and sslmode != "verify-full" and not _local_database(str(parts.get("host") or "localhost")):
        doc.problem(key, tr(f"sslmode={sslmode}: ohne Zertifikatsprüfung nur zu einer Loopback-Adresse",
                            f"sslmode={sslmode}: connections without certificate checks only to a loopback address"),
                    tr("sslmode=verify-full angeben oder weglassen: das Relay setzt verify-full selbst",
                       "write sslmode=verify-full or leave it out: the relay sets verify-full itself"))


def _local_database(host: str) -> bool:
    """A Unix socket folder or loopback addresses only (libpq takes a comma-separated list of hosts)."""
    return host.startswith("/") or all(is_loopback(part) for part in host.split(","))


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
