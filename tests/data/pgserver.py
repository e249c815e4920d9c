"""A throwaway PostgreSQL database for the test session (the real server; VENDOME_TEST_POSTGRES overrides where).

Import the fixtures into a test module (`from data.pgserver import pg_url, pg_workspace  # noqa: F401`). Each test
gets its own schema of a database created for the session with a unique name and dropped at its end.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from vendome.data import store
from vendome.workspace import Workspace

SERVER = os.environ.get("VENDOME_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """URL of a fresh database, dropped (with any connection still open to it) after the session."""
    name = f"vendome_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        admin = psycopg.connect(f"{SERVER}/postgres", autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as err:
        pytest.skip(f"no PostgreSQL server at {SERVER}: {err}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{SERVER}/{name}"
    finally:
        store._close_writers()
        with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pg_workspace(root: Path, url: str) -> Workspace:
    """A workspace in its own schema, named in the URL (`?schema=`) so child processes find it from the URL alone."""
    return Workspace(root, database_url=f"{url}?schema=t_{uuid.uuid4().hex[:12]}")
