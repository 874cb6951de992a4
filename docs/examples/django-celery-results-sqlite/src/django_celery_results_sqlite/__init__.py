"""An example out-of-tree driver: SQLite's ``ON CONFLICT`` upserts (SQLite 3.35+)."""

from .driver import SQLiteDriver

__all__ = ["SQLiteDriver"]
