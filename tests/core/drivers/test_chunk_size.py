"""Cleanup chunks shrink when they take too long, and grow back up to the batch size."""

from __future__ import annotations

from django_celery_results.drivers import ChunkSize
from django_celery_results.drivers.sql import CHUNK_SECONDS, MIN_CHUNK_ROWS


def test_starts_at_the_batch_size_and_stays_there_while_chunks_are_quick() -> None:
    size = ChunkSize(10_000)
    assert size.rows == 10_000
    size.took(CHUNK_SECONDS / 100)
    assert size.rows == 10_000


def test_a_slow_chunk_halves_the_next_at_most() -> None:
    size = ChunkSize(10_000)
    size.took(CHUNK_SECONDS * 10)
    assert size.rows == 5_000
    size.took(CHUNK_SECONDS * 1.25)
    assert size.rows == 4_000


def test_quick_chunks_grow_back_by_doubling_at_most() -> None:
    size = ChunkSize(10_000)
    for _ in range(3):
        size.took(CHUNK_SECONDS * 10)
    assert size.rows == 1_250
    size.took(CHUNK_SECONDS / 10)
    assert size.rows == 2_500


def test_never_below_the_floor_nor_the_batch_size() -> None:
    size = ChunkSize(10_000)
    for _ in range(50):
        size.took(60.0)
    assert size.rows == MIN_CHUNK_ROWS
    small = ChunkSize(20)
    small.took(60.0)
    assert small.rows == 20  # a batch below the floor is kept as asked
    small.took(0.0)  # a clock that did not move says nothing
    assert small.rows == 20
