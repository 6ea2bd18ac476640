"""The editors' users file: one `name:argon2hash` per line, replaced atomically, mode 0600."""
from __future__ import annotations

import getpass
import os
import re
import sys
from pathlib import Path

from argon2 import PasswordHasher

from mailrelay.i18n import tr
from mailrelay.web.config import web_settings

NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")  # ASCII only: no look-alike letters, no ':' that splits the line
MIN_PASSWORD = 10
EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2


def valid_name(name: str) -> bool:
    return NAME.fullmatch(name) is not None


def load_users(path: Path) -> dict[str, str]:
    """Name -> argon2 hash; no file means no editors yet. A line without a valid name is passed over."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    users = {}
    for line in text.splitlines():
        name, colon, digest = line.strip().partition(":")
        if colon and valid_name(name) and digest.startswith("$argon2"):
            users[name] = digest
    return users


def save_users(path: Path, users: dict[str, str]) -> None:
    """Replace the file in one step (a reader sees the old or the new list, never half), mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.fchmod(descriptor, 0o600)  # whatever the umask, and even if an old temporary file was wider
        os.write(descriptor, "".join(f"{name}:{digest}\n" for name, digest in sorted(users.items())).encode())
        os.fsync(descriptor)
        if os.geteuid() == 0:  # root adding an editor: the file belongs to whoever owns its folder (the console)
            folder = path.parent.stat()
            os.fchown(descriptor, folder.st_uid, folder.st_gid)
    finally:
        os.close(descriptor)
    os.replace(temporary, path)


def set_password(path: Path, name: str, password: str, hasher: PasswordHasher | None = None) -> bool:
    """Store `name`'s new hash; True if the name was new."""
    users = load_users(path)
    new = name not in users
    users[name] = (hasher or PasswordHasher()).hash(password)
    save_users(path, users)
    return new


def adduser(config: Path, name: str, from_stdin: bool) -> int:
    """`mailrelay web adduser NAME`: add an editor or give one a new password (asked twice, or one line of stdin)."""
    if not valid_name(name):
        return _refuse(tr(f"'{name}' geht nicht als Name: nur Buchstaben (a-z, A-Z), Ziffern, '.', '_' und '-', "
                          "höchstens 64 Zeichen", f"'{name}' is not a usable name: letters (a-z, A-Z), digits, "
                          "'.', '_' and '-' only, at most 64 characters"), EXIT_USAGE)
    password = _read_password(name, from_stdin)
    if password is None:
        return _refuse(tr("die beiden Passwörter stimmen nicht überein; nichts geändert",
                          "the two passwords differ; nothing changed"))
    if len(password) < MIN_PASSWORD:
        return _refuse(tr(f"das Passwort ist zu kurz: mindestens {MIN_PASSWORD} Zeichen; nichts geändert",
                          f"the password is too short: at least {MIN_PASSWORD} characters; nothing changed"))
    path = web_settings(config).users_file
    new = set_password(path, name, password)
    print(tr(f"{name} angelegt in {path}", f"{name} added to {path}") if new
          else tr(f"neues Passwort für {name} in {path}", f"new password for {name} in {path}"))
    return EXIT_OK


def _read_password(name: str, from_stdin: bool) -> str | None:
    """The password, or None when the two entries differ."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass(tr(f"Passwort für {name}: ", f"Password for {name}: "))
    second = getpass.getpass(tr("Noch einmal: ", "Once more: "))
    return first if first == second else None


def _refuse(message: str, code: int = EXIT_REFUSED) -> int:
    print(f"mailrelay web adduser: {message}", file=sys.stderr)
    return code
