"""Alembic migrations of the history database, run by ``ispbx.history.database.upgrade``."""
