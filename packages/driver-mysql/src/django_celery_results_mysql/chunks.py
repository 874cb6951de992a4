"""How many rows go in one MySQL statement: cut by rows and payload bytes, in order."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from django_celery_results.drivers import TaskRow

#: Rows per INSERT, and the payload bytes after which a batch is cut into another
#: statement: well inside ``max_allowed_packet`` (16 MiB on MariaDB, 64 MiB on MySQL 8).
MAX_ROWS_PER_STATEMENT = 512  # a power of two: PENDING chunks are powers of two up to it
MAX_BYTES_PER_STATEMENT = 4 * 1024 * 1024


def pow2_chunks(rows: Sequence[TaskRow]) -> Iterator[Sequence[TaskRow]]:
    """Cut rows into chunks whose sizes are powers of two (at most 512 rows), keeping order.

    Statements are built once per row count: this keeps that to ten texts however the
    sends are grouped, at the cost of a few statements more per batch.
    """
    for batch in batches(rows):
        start = 0
        while start < len(batch):
            size = min(MAX_ROWS_PER_STATEMENT, 1 << ((len(batch) - start).bit_length() - 1))
            yield batch[start : start + size]
            start += size


def batches(rows: Sequence[TaskRow]) -> Iterator[Sequence[TaskRow]]:
    """Cut rows into statements of at most the row and payload limits, keeping order."""
    start = 0
    size = 0
    for index, row in enumerate(rows):
        payload = sum(
            len(value)
            for value in (row.result, row.traceback, row.meta, row.task_args, row.task_kwargs)
            if value
        )
        if index > start and (
            index - start >= MAX_ROWS_PER_STATEMENT or size + payload > MAX_BYTES_PER_STATEMENT
        ):
            yield rows[start:index]
            start, size = index, 0
        size += payload
    if start < len(rows):
        yield rows[start:]
