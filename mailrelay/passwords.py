"""Where the passwords (mail servers, state database) come from, and whether they can be read: without showing them."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mailrelay.i18n import tr
from mailrelay.tomlcheck import ConfigError, Problem, TomlFile

if TYPE_CHECKING:
    from mailrelay.config import Settings


@dataclass(frozen=True)
class Secret:
    """Where a password is read from; the value itself is read only when a connection needs it."""

    file: Path | None = None
    env: str | None = None

    def read(self) -> str:
        if self.env:
            value = os.environ.get(self.env)
            if value is None:
                raise ConfigError([Problem("environment", 0, _unset(self.env), _unset_hint())])
            return value
        if self.file is None:
            return ""
        try:
            value = self.file.read_text(encoding="utf-8").strip()
        except OSError as error:
            raise ConfigError([Problem(str(self.file), 0, _unreadable(error))]) from None
        return value

    def exposure(self) -> str | None:
        """A warning when the password file can be read by its group or by anyone (the value is not read)."""
        try:
            mode = self.file.stat().st_mode if self.file else 0
        except OSError:
            return None
        if mode & 0o077:
            return tr(f"{self.file} können auch andere lesen (Modus {mode & 0o777:o}); chmod 600 {self.file}",
                      f"{self.file} can be read by others (mode {mode & 0o777:o}); chmod 600 it")
        return None


def exposed_secrets(settings: Settings) -> list[str]:
    """A warning for each password file its group or anyone can read."""
    return [warning for warning in (secret.exposure() for _, secret in _secrets(settings)) if warning]


def _secrets(settings: Settings) -> list[tuple[str, Secret]]:
    """Each password the config names, with its section: the mail servers', and the state database's."""
    named = [(section, part.server.password) for section, part in (("imap", settings.imap), ("smtp", settings.smtp))
             if part is not None]
    return named + ([("state", settings.state_password)] if settings.state_url else [])


def check_secrets(settings: Settings) -> list[Problem]:
    """A problem for each password that could not be read now: a password_file that does not exist or
    cannot be read, a password_env naming an unset variable; at the line where it is set. The value is
    never shown. A relative password_file outside systemd (no $CREDENTIALS_DIRECTORY) that is not beside
    the config is not judged: the service's own check (ExecStartPre) sees its credentials."""
    doc = TomlFile.load(settings.path)
    problems = []
    for section, secret in _secrets(settings):
        table = doc.data.get(section, {})
        if secret.env and secret.env not in os.environ:
            problems.append(Problem(str(doc.path), doc.line_of((section, "password_env")), _unset(secret.env),
                                    _unset_hint()))
        elif secret.file and _judged_here(table.get("password_file", "")):
            problem = _password_file_problem(secret.file)
            if problem:
                problems.append(Problem(str(doc.path), doc.line_of((section, "password_file")), *problem))
    return problems


def _judged_here(written: str) -> bool:
    return bool(os.environ.get("CREDENTIALS_DIRECTORY")) or Path(written).is_absolute()


def _password_file_problem(path: Path) -> tuple[str, str] | None:
    """What is wrong with the password file at `path`, and what to do; None when it can be read."""
    if not path.exists():
        return (tr(f"die Passwortdatei {path} gibt es nicht", f"the password file {path} does not exist"),
                tr("Pfad in password_file prüfen, oder die Datei anlegen (chmod 600)",
                   "check the path in password_file, or create the file (chmod 600)"))
    try:
        value = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        return (_unreadable(error), tr("sie muss dem Benutzer gehören, unter dem mailrelay läuft (chmod 600)",
                                       "it must belong to the user mailrelay runs as (chmod 600)"))
    if not value.strip():
        return (tr(f"die Passwortdatei {path} ist leer", f"the password file {path} is empty"),
                tr("das Passwort in die erste Zeile schreiben", "write the password on its first line"))
    return None


def _unreadable(error: Exception) -> str:
    reason = getattr(error, "strerror", None) or tr("kein UTF-8", "not UTF-8")
    return tr(f"die Passwortdatei kann nicht gelesen werden: {reason}", f"cannot read the password file: {reason}")


def _unset(variable: str) -> str:
    return tr(f"die Umgebungsvariable {variable} (password_env) ist nicht gesetzt",
              f"the environment variable {variable} (password_env) is not set")


def _unset_hint() -> str:
    return tr("in der systemd-Unit mit Environment= oder EnvironmentFile= setzen, oder vor dem Aufruf exportieren",
              "set it in the systemd unit with Environment= or EnvironmentFile=, or export it before the call")
