"""Example tasks: one of each outcome the result backend records."""

import time

from celery import shared_task


@shared_task
def add(x: int, y: int) -> int:
    """Succeed."""
    return x + y


@shared_task
def fail(message: str) -> None:
    """Fail with a traceback."""
    raise ValueError(message)


@shared_task(bind=True, max_retries=3)
def flaky(self, value: int) -> int:  # type: ignore[no-untyped-def]
    """Fail on the first try, then succeed: a RETRY state, then SUCCESS."""
    if self.request.retries == 0:
        raise self.retry(countdown=0.5)
    return value


@shared_task
def slow(seconds: float) -> float:
    """Take a while, so processing time shows."""
    time.sleep(seconds)
    return seconds


@shared_task
def tsum(numbers: list[int]) -> int:
    """Add up a chord header's results."""
    return sum(numbers)


@shared_task(acks_late=True)
def slow_acks_late(seconds: float) -> float:
    """Like ``slow``, acknowledged only when done: a killed worker's message comes back."""
    time.sleep(seconds)
    return seconds


@shared_task(bind=True)
def inject_meta(self, value: str) -> str:  # type: ignore[no-untyped-def]
    """Put extra fields into the stored meta through ``request.meta``."""
    self.request.meta = {"injected": value}
    return value


@shared_task(bind=True)
def report_progress(self, steps: int) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """Report ``steps`` PROGRESS states, then say whether this worker batches its writes."""
    from django_celery_results.conf import app_settings

    for step in range(steps):
        self.update_state(state="PROGRESS", meta={"step": step})
    return {"steps": steps, "batched": app_settings().BATCH_WRITES is not None}


@shared_task(bind=True, max_retries=1)
def retry_later(self, seconds: float) -> str:  # type: ignore[no-untyped-def]
    """Retry once after ``seconds``: the worker stores RETRY, and the task waits its ETA."""
    if self.request.retries == 0:
        raise self.retry(countdown=seconds)
    return "retried"


@shared_task(ignore_result=True)
def fire_and_forget(value: int) -> int:
    """A task whose definition ignores its result: nothing of it is ever stored."""
    return value
