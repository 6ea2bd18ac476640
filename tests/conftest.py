"""Fixtures that start real servers on loopback: Dovecot for IMAP, an aiosmtpd sink for SMTP."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.servers import Dovecot, SmtpSink, TlsMaterial, dovecot_binary, make_tls_material

REPO_ROOT = Path(__file__).resolve().parent.parent

# What the tools say depends on the locale; the tests fix it (German, the default) and ask for English
# with --lang en where they read English. Subprocesses inherit this.
for _name in ("LC_ALL", "LC_MESSAGES"):
    os.environ.pop(_name, None)
os.environ["LANG"] = "C.UTF-8"


@pytest.fixture(autouse=True)
def _german() -> Iterator[None]:
    """Each test starts in the default language, whatever the test before it chose."""
    from mailrelay.i18n import set_language

    set_language("de")
    yield
    set_language("de")


@pytest.fixture(scope="session")
def tls_material() -> Iterator[TlsMaterial]:
    """A throwaway CA and a server certificate for localhost / 127.0.0.1."""
    with tempfile.TemporaryDirectory(prefix="mailrelay-tls-") as directory:
        yield make_tls_material(directory)


@pytest.fixture(scope="session")
def dovecot(tls_material: TlsMaterial) -> Iterator[Dovecot]:
    """One private Dovecot for the whole run; any username logs in with its password."""
    if dovecot_binary() is None:
        if os.environ.get("CI"):
            pytest.fail("dovecot is not installed; .ci/run must install dovecot-imapd")
        pytest.skip("dovecot is not installed (apt-get install dovecot-imapd)")
    with Dovecot(tls_material) as server:
        yield server


@pytest.fixture(scope="session")
def postgres() -> Iterator["Postgres"]:
    """One private PostgreSQL for the whole run, from Debian's package."""
    from tests.postgres import Postgres, postgres_bin

    if postgres_bin() is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed; .ci/run must install postgresql")
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    with Postgres() as server:
        yield server


@pytest.fixture
def postgres_url(postgres) -> str:
    """The URL of a database created for this test alone."""
    return postgres.database()


@pytest.fixture
def imap_user() -> str:
    """A username never used before in this run, so its mailboxes start empty."""
    return f"t-{uuid.uuid4().hex}"


@pytest.fixture
def make_smtp_sink(tls_material: TlsMaterial) -> Iterator[Callable[..., SmtpSink]]:
    """A factory for started SmtpSinks (keywords as SmtpSink; tls=True means the test CA)."""
    sinks: list[SmtpSink] = []

    def make(*, tls: bool = False, implicit_tls: bool = False,
             auth: tuple[str, str] | None = None) -> SmtpSink:
        sink = SmtpSink(tls=tls_material if tls or implicit_tls else None,
                        implicit_tls=implicit_tls, auth=auth)
        sink.start()
        sinks.append(sink)
        return sink

    yield make
    for sink in sinks:
        sink.stop()


@pytest.fixture
def smtp_sink(make_smtp_sink: Callable[..., SmtpSink]) -> SmtpSink:
    """A started plain SMTP sink without TLS or AUTH."""
    return make_smtp_sink()


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    """The labelled sample inbox in shared/ beside the repository."""
    path = (REPO_ROOT / ".." / "shared" / "corpus" / "pool-a").resolve()
    if not path.is_dir():
        pytest.skip(f"corpus not found at {path}")
    return path


@pytest.fixture(params=["sqlite", "postgres"])
def state_kind(request) -> str:
    """The kind of state store a test runs against: each test that asks runs once with each."""
    return request.param


@pytest.fixture
def state_url(state_kind: str, request) -> str | None:
    """What write_config's state_url takes for this kind: None for the SQLite file, a fresh database's
    URL for PostgreSQL (skipped without PostgreSQL, failed under CI=1, as the `postgres` fixture)."""
    if state_kind == "sqlite":
        return None
    return request.getfixturevalue("postgres").database()
