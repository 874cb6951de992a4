"""Rolled-up history: exact counts and time spreads of finished tasks, kept apart from the rows.

``rollup.catch_up`` counts the rows written since it last ran (every write clears the
row's ``rolled_up`` flag) into buckets of a minute to a day, moving a task whose final
state changed from its old bucket to its new one; ``windows`` reads any window back.
Deleting result rows never changes the history. ``docs/architecture.md`` explains it.
"""
