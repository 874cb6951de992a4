"""Bounded retry of driver operations after transient database errors."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from django.db import DatabaseError

from .. import losses
from ..conf import app_settings

if TYPE_CHECKING:
    from .base import BaseDriver

T = TypeVar("T")
logger = logging.getLogger(__name__)


class RetryingOperations:
    """A driver's operations, each call retried after a transient error: ``driver.retrying``.

    Core calls the store through it (``driver.retrying.get_task_results(ids)``); it has
    every public method of the driver's operations, wrapped by :func:`with_retry` the
    first time it is looked up.
    """

    def __init__(self, driver: BaseDriver) -> None:
        self._driver = driver

    def __getattr__(self, name: str) -> Callable[..., Any]:
        operation = getattr(self._driver.ops, name)
        if name.startswith("_") or not callable(operation):
            raise AttributeError(f"{name!r} is not an operation of {self._driver!r}")
        driver = self._driver

        def retried(*args: Any, **kwargs: Any) -> Any:
            # Looked up per call: the operation may be replaced on the instance (mocks).
            return with_retry(driver, getattr(driver.ops, name), *args, **kwargs)

        retried.__name__ = retried.__qualname__ = name
        retried.__doc__ = operation.__doc__
        setattr(self, name, retried)  # found in the instance from now on
        return retried


def with_retry(
    driver: BaseDriver, operation: Callable[..., T], *args: object, **kwargs: object
) -> T:
    """Run ``operation(*args, **kwargs)``, retrying when the driver calls the error transient.

    Before a retry the alias's connection is closed, so Django opens a fresh one. Writes
    are idempotent upserts, so running one twice is safe. Inside the caller's own
    transaction nothing is retried: the transaction is already lost and only the caller
    can run it again. Other errors, and the last transient one, are raised as they are.
    """
    try:  # the first attempt apart from the loop: every write and poll comes through here
        return operation(*args, **kwargs)
    except Exception as exc:
        return retry_after(driver, exc, operation, *args, **kwargs)


def retry_after(
    driver: BaseDriver,
    exc: Exception,
    operation: Callable[..., T],
    *args: object,
    **kwargs: object,
) -> T:
    """Retry ``operation`` after its first attempt raised ``exc`` (see :func:`with_retry`).

    Raises ``exc`` when it may not be retried, else the last attempt's error, with the
    number of attempts made noted on it (``losses.attempts_of``).
    """
    conf = app_settings()  # only on errors: the call itself is a poll's hot path
    attempt = 0
    while True:
        connection = driver.connection
        if (
            attempt >= conf.MAX_RETRIES
            or connection.in_atomic_block
            or not driver.ops.is_transient_error(exc)
        ):
            losses.note_attempts(exc, attempt + 1)
            raise exc
        delay = min(conf.RETRY_BACKOFF * 2**attempt, conf.RETRY_BACKOFF_MAX)
        attempt += 1
        losses.note_retry()
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
        try:
            return operation(*args, **kwargs)
        except Exception as retry_exc:
            exc = retry_exc
