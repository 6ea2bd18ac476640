"""Files and folders a person names on the command line: read, or one line that says what to do instead."""
from __future__ import annotations

import json
from pathlib import Path

from mailrelay.i18n import tr
from mailrelay.parse import not_a_mail

EXIT_USAGE = 2  # the person named something that is not there, not readable, or not in the form asked for
EXIT_NOT_A_MAIL = 3  # the file is there and readable, but it is no mail: nothing to explain
_LABEL_EXAMPLE = '{"file": "a.eml", "kind": "application", "route": "editors"}'


class InputError(Exception):
    """An expected mistake in what a person named: the message says what to do, `exit_code` how it ended."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def read_file(path: Path, what: str) -> bytes:
    """The bytes of `path`; an InputError for a missing file, a folder, or one without read permission."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InputError(tr(f"{path}: keine solche Datei; bitte den Pfad {what} angeben",
                            f"{path}: no such file; give the path {what}")) from None
    except IsADirectoryError:
        raise InputError(tr(f"{path} ist ein Ordner; bitte eine einzelne Datei darin angeben",
                            f"{path} is a folder; give one file in it")) from None
    except PermissionError:
        raise InputError(tr(f"{path}: keine Leseberechtigung; bitte die Rechte prüfen (ls -l) oder eine Kopie nehmen",
                            f"{path}: no permission to read it; check its permissions (ls -l) or use a copy")) from None
    except OSError as error:
        raise InputError(tr(f"{path} lässt sich nicht lesen ({error.strerror}); bitte eine andere Datei angeben",
                            f"{path} cannot be read ({error.strerror}); give another file")) from None


def read_mail(path: Path) -> bytes:
    """A mail file's bytes; an InputError (EXIT_NOT_A_MAIL) when the file is no mail."""
    data = read_file(path, tr("zu einer .eml-Datei", "of an .eml file"))
    reason = not_a_mail(data)
    if reason:
        raise InputError(tr(f"{path}: keine E-Mail: {reason}", f"{path}: not a mail: {reason}"), EXIT_NOT_A_MAIL)
    return data


def read_labels(folder: Path) -> list[dict]:
    """The labels of a labelled folder, one JSON object per line of labels.jsonl, each naming a file there."""
    if not folder.is_dir():
        raise InputError(tr(f"{folder}: kein solcher Ordner; bitte den Ordner mit labels.jsonl und den Mails angeben",
                            f"{folder}: no such folder; give the folder with labels.jsonl and the mails")
                         if not folder.exists() else
                         tr(f"{folder} ist kein Ordner; bitte den Ordner mit labels.jsonl angeben",
                            f"{folder} is not a folder; give the folder with labels.jsonl"))
    path = folder / "labels.jsonl"
    if not path.exists():
        raise InputError(tr(f"{folder}: keine labels.jsonl darin; bitte anlegen, je Mail eine Zeile wie "
                            f"{_LABEL_EXAMPLE}",
                            f"{folder}: no labels.jsonl in it; write one, a line per mail like {_LABEL_EXAMPLE}"))
    text = read_file(path, "").decode("utf-8", "replace")
    return [_label(path, number, line) for number, line in enumerate(text.splitlines(), 1) if line.strip()]


def _label(path: Path, number: int, line: str) -> dict:
    try:
        label = json.loads(line)
    except json.JSONDecodeError as error:
        raise InputError(tr(f"{path}:{number}: kein gültiges JSON (Fehler bei Zeichen {error.colno}); "
                            f"jede Zeile ist ein Objekt wie {_LABEL_EXAMPLE}",
                            f"{path}:{number}: not valid JSON ({error.msg}, character {error.colno}); "
                            f"each line is an object like {_LABEL_EXAMPLE}")) from None
    if not isinstance(label, dict) or not isinstance(label.get("file"), str) or not label["file"]:
        raise InputError(tr(f"{path}:{number}: \"file\" fehlt; jede Zeile nennt ihre Mail, wie {_LABEL_EXAMPLE}",
                            f"{path}:{number}: \"file\" is missing; each line names its mail, like {_LABEL_EXAMPLE}"))
    if not (path.parent / label["file"]).is_file():
        raise InputError(tr(f"{path}:{number}: die Mail {label['file']} fehlt im Ordner {path.parent}",
                            f"{path}:{number}: the mail {label['file']} is not in the folder {path.parent}"))
    return label
