"""Errors said to a person in one line: what is wrong and what to do, with an exit code. `cli.main` sends
every command's exceptions through `exit_code_of`, so no command shows people a traceback."""
from __future__ import annotations

import os
import sys
from pathlib import Path

EXIT_FAILED, EXIT_CONFIG, EXIT_INTERRUPTED = 1, 2, 130


class CommandError(Exception):
    """Raised where the mistake is understood; `cli.main` prints the message (no traceback) and exits with
    `exit_code`: 2 for a configuration or usage mistake, 1 for a failure of the run."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED):
        super().__init__(message)
        self.exit_code = exit_code


def say(message: str) -> None:
    print(f"mailrelay: {message}", file=sys.stderr)


def exit_code_of(error: BaseException, command: str, config: Path, quiet: bool) -> int | None:
    """Say `error` in one line (a configuration's problems one per line) and return the exit code. An
    expected mistake says what to do; an unexpected one says where the details are, and the log keeps its
    traceback: always for once and run, whose log is the journal, with --log-level debug for the commands
    people read. None for what is not an error to say (SystemExit: argparse and the demo said it)."""
    if isinstance(error, SystemExit):
        return None
    if isinstance(error, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    expected = _expected(error, config)
    if expected is not None:
        message, code = expected
        say(message)
        return code
    _log_unexpected(error, command, quiet)
    say(_tr(f"unerwarteter Fehler: {type(error).__name__}: {error} (Einzelheiten mit --log-level debug)",
            f"unexpected error: {type(error).__name__}: {error} (details with --log-level debug)"))
    return EXIT_FAILED


def _expected(error: BaseException, config: Path) -> tuple[str, int] | None:
    import sqlite3

    from mailrelay.state import AlreadyRunning
    from mailrelay.tomlcheck import ConfigError

    if isinstance(error, ConfigError):
        return _config_message(error, config), EXIT_CONFIG
    if isinstance(error, CommandError):
        return str(error), error.exit_code
    if isinstance(error, AlreadyRunning):
        return _tr(f"{error}: ein anderer mailrelay (der Dienst?) arbeitet mit diesem Zustand; ihn erst beenden",
                   f"{error}: another mailrelay (the service?) works on this state; stop it first"), EXIT_FAILED
    if isinstance(error, sqlite3.Error):
        return _tr(f"die Zustandsdatei ist nicht verwendbar: {error}; Pfad und Rechte von [state] path prüfen",
                   f"the state file is not usable: {error}; check the path and permissions of [state] path"), EXIT_FAILED
    if isinstance(error, OSError) and error.strerror:
        where = f"{error.filename}: " if error.filename else ""
        return _tr(f"{where}{error.strerror}: Pfad und Rechte prüfen",
                   f"{where}{error.strerror}: check the path and permissions"), EXIT_FAILED
    return None


def _config_message(error, config: Path) -> str:
    if not os.path.exists(config) and all(problem.file == str(config) for problem in error.problems):
        return _tr(f"keine Konfigurationsdatei {config}: mit --config DATEI angeben oder MAILRELAY_CONFIG setzen",
                   f"no configuration file {config}: name it with --config FILE or set MAILRELAY_CONFIG")
    return _tr("die Konfiguration ist nicht verwendbar:", "the configuration is not usable:") + f"\n{error}"


def _log_unexpected(error: BaseException, command: str, quiet: bool) -> None:
    from mailrelay.logs import get_logger

    log = get_logger()
    (log.debug if quiet else log.error)("command.crashed", command=command, exc_info=error)


def _tr(de: str, en: str) -> str:
    from mailrelay.i18n import tr

    return tr(de, en)
