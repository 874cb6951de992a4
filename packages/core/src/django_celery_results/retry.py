"""Bounded retry of driver operations after transient database errors."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import TypeVar

from django.db import DatabaseError

from .conf import app_settings
from .drivers.base import BaseDriver

T = TypeVar("T")
logger = logging.getLogger(__name__)


def with_retry(driver: BaseDriver, operation: Callable[..., T], *args: object) -> T:
    """Run ``operation(*args)``, retrying when the driver calls the error transient.

    Before a retry the alias's connection is closed, so Django opens a fresh one. Writes
    are idempotent upserts, so running one twice is safe. Inside the caller's own
    transaction nothing is retried: the transaction is already lost and only the caller
    can run it again. Other errors, and the last transient one, are raised as they are.
    """
    conf = app_settings()
    attempt = 0
    while True:
        try:
            return operation(*args)
        except Exception as exc:
            connection = driver.connection
            if (
                attempt >= conf.MAX_RETRIES
                or connection.in_atomic_block
                or not driver.ops.is_transient_error(exc)
            ):
                raise
            delay = min(conf.RETRY_BACKOFF * 2**attempt, conf.RETRY_BACKOFF_MAX)
            attempt += 1
            logger.warning(
                "Transient database error on %r (%s); retry %d of %d in %.2fs.",
                driver.alias,
                exc,
                attempt,
                conf.MAX_RETRIES,
                delay,
            )
            with contextlib.suppress(DatabaseError):
                connection.close()
            time.sleep(delay)
