"""Fixtures for cluster tests: a Redis client per test with its own key prefix."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from tests.servers import RedisServer


@pytest.fixture
def prefix() -> str:
    """A namespace per test: the session-wide redis-server is shared by every test."""
    return "t" + os.urandom(4).hex()


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server.url)
    try:
        yield client
    finally:
        await client.aclose()
