"""The main TOML file -> frozen, fully validated settings; every problem reported at once."""
from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from mailrelay.tomlcheck import ConfigError, Key, Problem, TomlFile

SECURITY_MODES = ("tls", "starttls", "plain")
_TOP_KEYS = ("rules", "signals", "templates", "reference", "imap", "maildir", "smtp", "outbox", "state", "schedule",
             "relay", "health")


@dataclass(frozen=True)
class Secret:
    """Where a password is read from; the value itself is read only when a connection needs it."""

    file: Path | None = None
    env: str | None = None

    def read(self) -> str:
        if self.env:
            value = os.environ.get(self.env)
            if value is None:
                raise ConfigError([Problem("environment", 0, f"variable {self.env} is not set")])
            return value
        if self.file is None:
            return ""
        try:
            value = self.file.read_text(encoding="utf-8").strip()
        except OSError as error:
            raise ConfigError([Problem(str(self.file), 0, f"cannot read the password file: {error.strerror}")]) from None
        return value

    def exposure(self) -> str | None:
        """A warning when the password file can be read by its group or by anyone (the value is not read)."""
        try:
            mode = self.file.stat().st_mode if self.file else 0
        except OSError:
            return None
        if mode & 0o077:
            return f"{self.file} can be read by others (mode {mode & 0o777:o}); chmod 600 it"
        return None


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
    _exactly_one(doc, data, ("imap", "maildir"), "mail source")
    _exactly_one(doc, data, ("smtp", "outbox"), "transport")
    relay = _table(doc, data, "relay")
    doc.check_keys(relay, ("from_address", "id", "max_forwards_per_sender_per_hour",
                           "max_forwards_per_thread_per_hour", "max_forwards_per_poll", "authserv_id"), ("relay",))
    per_poll = doc.get(relay, "max_forwards_per_poll", int, ("relay",), 200)
    if per_poll is not None and per_poll < 1:
        doc.problem(("relay", "max_forwards_per_poll"), "max_forwards_per_poll must be at least 1")
    per_sender = doc.get(relay, "max_forwards_per_sender_per_hour", int, ("relay",), 10)
    if per_sender is not None and per_sender < 1:
        doc.problem(("relay", "max_forwards_per_sender_per_hour"), "max_forwards_per_sender_per_hour must be at least 1")
    per_thread = doc.get(relay, "max_forwards_per_thread_per_hour", int, ("relay",), 10)
    if per_thread is not None and per_thread < 1:
        doc.problem(("relay", "max_forwards_per_thread_per_hour"), "max_forwards_per_thread_per_hour must be at least 1")
    state = _table(doc, data, "state")
    doc.check_keys(state, ("path", "keep_raw_days"), ("state",))
    keep_raw_days = doc.get(state, "keep_raw_days", int, ("state",), 30)
    if keep_raw_days is not None and keep_raw_days < 1:
        doc.problem(("state", "keep_raw_days"), "keep_raw_days must be at least 1")
    schedule = _table(doc, data, "schedule")
    doc.check_keys(schedule, ("poll_seconds", "retry_min_seconds", "retry_max_seconds"), ("schedule",))
    retry = tuple(doc.get(schedule, name, (int, float), ("schedule",), default)
                  for name, default in (("retry_min_seconds", 60), ("retry_max_seconds", 3600)))
    if None not in retry and not 0 <= retry[0] <= retry[1]:
        doc.problem(("schedule", "retry_max_seconds"), "retry_min_seconds must be 0 or more and at most retry_max_seconds")
    poll_seconds = doc.get(schedule, "poll_seconds", (int, float), ("schedule",), 60)
    if poll_seconds is not None and poll_seconds < 1:
        doc.problem(("schedule", "poll_seconds"), "poll_seconds must be at least 1")
    health = _table(doc, data, "health")
    doc.check_keys(health, ("outage_minutes", "quarantined_per_day", "operators"), ("health",))
    outage_minutes = doc.get(health, "outage_minutes", (int, float), ("health",), 30)
    if outage_minutes is not None and outage_minutes <= 0:
        doc.problem(("health", "outage_minutes"), "outage_minutes must be more than 0")
    quarantined_per_day = doc.get(health, "quarantined_per_day", int, ("health",), 10)
    operators = doc.get(health, "operators", list, ("health",), [])
    for address in operators or []:
        if not isinstance(address, str) or "@" not in address or not address.isascii():
            doc.problem(("health", "operators"), f"'{address}' is not a mail address",
                        hint='a list of addresses: operators = ["it-betrieb@example.org"]')
    from_address = doc.get(relay, "from_address", str, ("relay",))
    if from_address is not None and "@" not in from_address:
        doc.problem(("relay", "from_address"), f"'{from_address}' is not a mail address")
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
    )
    doc.raise_if_problems()
    return settings


def exposed_secrets(settings: Settings) -> list[str]:
    """A warning for each password file its group or anyone can read."""
    endpoints = [part.server for part in (settings.imap, settings.smtp) if part]
    return [warning for warning in (endpoint.password.exposure() for endpoint in endpoints) if warning]


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


def _table(doc: TomlFile, data: dict, name: str) -> dict:
    value = data.get(name, {})
    if not isinstance(value, dict):
        doc.problem((name,), f"'{name}' must be a table ([{name}])")
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


def _exactly_one(doc: TomlFile, data: dict, sections: tuple[str, str], what: str) -> None:
    if (sections[0] in data) == (sections[1] in data):
        doc.problem((), f"the config must name exactly one {what}: [{sections[0]}] or [{sections[1]}]")


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
        doc.problem(("imap",), "mailbox, processed_mailbox, ignored_mailbox and quarantine_mailbox must all differ")
    batch_size = doc.get(table, "batch_size", int, ("imap",), 50)
    max_bytes = doc.get(table, "max_message_bytes", int, ("imap",), 25 * 1024 * 1024)
    idle = doc.get(table, "idle", bool, ("imap",), True)
    renew = doc.get(table, "idle_renew_seconds", (int, float), ("imap",), 300)
    if renew is not None and not 1 <= renew <= 1500:
        doc.problem(("imap", "idle_renew_seconds"), "idle_renew_seconds must be between 1 and 1500",
                    hint="servers may end an IDLE after 29 minutes; renew well before that")
    archive = doc.get(table, "archive", str, ("imap",), "move")
    if archive not in (None, "move", "flag"):
        doc.problem(("imap", "archive"), f"archive must be 'move' or 'flag', not '{archive}'")
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
        doc.problem(key + ("security",), f"security must be one of {', '.join(SECURITY_MODES)}, not '{security}'")
        security = "tls"
    if security == "plain" and host and not _is_loopback(host):
        doc.problem(key + ("security",), "plain (unencrypted) connections are only allowed to a loopback address",
                    "use tls or starttls")
    if "password" in table:
        doc.problem(key + ("password",), "a password must not be written into the config file",
                    "use password_file (or a systemd credential) or password_env")
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
        doc.problem(key + ("password_env",), "give password_file or password_env, not both")
    if not file_name:
        return Secret(env=env)
    credentials = os.environ.get("CREDENTIALS_DIRECTORY")
    candidate = Path(file_name)
    if credentials and not candidate.is_absolute() and (Path(credentials) / candidate).exists():
        return Secret(file=Path(credentials) / candidate)
    return Secret(file=_relative(doc.path.parent, file_name))


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
