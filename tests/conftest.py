"""Shared fixtures: real PostgreSQL and Redis servers on loopback, one per test session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers import PostgresServer, RedisServer, start_postgres, start_redis


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    try:
        server = start_postgres()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    try:
        server = start_redis()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    yield server
    server.stop()
