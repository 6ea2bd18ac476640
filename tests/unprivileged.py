"""Run `mailrelay ARGS` as the user nobody, as a monitoring system would: `python -m tests.unprivileged ARGS`.

The interpreter here lives under /root, which nobody cannot enter, so the modules `status` needs are
imported as root first and only then are the privileges dropped for good."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

NOBODY = 65534


def run_as_nobody(*args: str, cwd: Path, **environment: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tests.unprivileged", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=60, env=dict(os.environ, PYTHONPATH=str(Path(__file__).parents[1]),
                                                          **environment))


def _main(argv: list[str]) -> int:
    import encodings.idna  # noqa: F401  (imported now: nobody cannot read the standard library later)
    import json  # noqa: F401
    import sqlite3  # noqa: F401

    from mailrelay import cli, config, errors, health, state, statuscli, statusfile  # noqa: F401
    from mailrelay.state import sqlite  # noqa: F401
    from mailrelay.logs import configure_logging

    cli._parser()  # imports what the subcommands' parsers need
    configure_logging("warning")
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)
    if os.geteuid() != NOBODY or os.access("/root", os.X_OK):
        raise SystemExit("could not become nobody")
    return cli.main(argv)


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
