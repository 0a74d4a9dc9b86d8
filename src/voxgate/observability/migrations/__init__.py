"""Alembic migrations of the call records database, run programmatically at start-up."""
