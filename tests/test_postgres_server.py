"""The test run's PostgreSQL: reachable on loopback with a password, one fresh database per test."""
from __future__ import annotations

import os

import psycopg
import pytest


def test_each_test_gets_an_empty_database_of_its_own(postgres, postgres_url):
    """A test's database has no tables of its own, and a second one is another database."""
    with psycopg.connect(postgres_url) as connection:
        tables = connection.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()[0]
        name = connection.execute("SELECT current_database()").fetchone()[0]
    assert tables == 0
    assert postgres.database().rsplit("/", 1)[1] != name


def test_a_wrong_password_is_refused(postgres):
    """Loopback connections need the password: the server is not open to every local user."""
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(postgres.url().replace(postgres.password, "wrong"), connect_timeout=5).close()


def test_the_server_does_not_run_as_root(postgres):
    """PostgreSQL refuses root; the test server's data folder belongs to an unprivileged user."""
    with psycopg.connect(postgres.url()) as connection:
        directory = connection.execute("SHOW data_directory").fetchone()[0]
    assert os.stat(directory).st_uid != 0
