"""The worker's write counts: shared with forked processes, never stuck on a lost lock."""

from __future__ import annotations

import subprocess
import sys
import threading

from django_celery_results.losses import WriteCounts

#: Forks in a process of its own: a fork of the test process would share its connections.
FORK = """
import os
from django_celery_results.losses import WriteCounts
counts = WriteCounts()
pid = os.fork()
if pid == 0:
    counts.add(retried=2, lost=1)
    os._exit(0)
os.waitpid(pid, 0)
print(counts.retried, counts.lost)
"""


def test_a_forked_child_counts_into_its_parent_s_memory() -> None:
    done = subprocess.run([sys.executable, "-c", FORK], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["2", "1"]


def test_a_lock_never_given_back_does_not_stop_the_counts() -> None:
    """Its holder was killed (a hard time limit): reading and counting still go on."""
    counts = WriteCounts()
    held = threading.Event()

    def hold_forever() -> None:
        counts._retried.get_lock().acquire()
        held.set()

    threading.Thread(target=hold_forever, daemon=True).start()
    assert held.wait(timeout=10)
    counts.add(retried=1)
    assert counts.retried == 1
