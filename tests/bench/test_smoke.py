"""The benchmark runs end to end on tiny sizes (no speed is asserted: it is a benchmark)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.databases import HOW_TO_START, SERVERS, reachable, strict

ROOT = Path(__file__).resolve().parents[2]
#: The database server each benchmark name runs on, by its alias in ``tests.databases``.
ALIASES = {"postgres": "postgres", "mariadb": "mysql"}


def require(db: str) -> None:
    """Skip when ``db``'s server is not running, except in CI, where every leg must run."""
    alias = ALIASES.get(db)
    if alias is None or strict():
        return
    server = SERVERS[alias]
    if not reachable(server["HOST"], server["PORT"]):
        pytest.skip(f"{db} is not running; start it with: {HOW_TO_START[alias]}")


def run_bench(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``bench/<script>`` with ``args`` from the repository root; fail if it fails."""
    completed = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed


@pytest.mark.parametrize("db", ["sqlite", "postgres", "mariadb"])
def test_bench_runs_on_tiny_sizes(db: str, tmp_path: Path) -> None:
    require(db)
    out = tmp_path / "bench.json"
    completed = run_bench(
        "run.py", "--db", db, "--tasks", "8", "--repeats", "1", "--no-upstream", "--batched",
        "--settle", "0", "--json", str(out),
    )  # fmt: skip
    assert "| lifecycle |" in completed.stdout
    results = json.loads(out.read_text())
    assert results["db"] == db
    assert results["ours"]["lifecycle"]["rate"] > 0
    assert results["raw"]["lifecycle"]["rate"] > 0
    assert results["ours"]["race"]["wrong"] == 0
    assert results["ours"]["chord4"]["callbacks"] == 1
    assert results["batched"]["threads4"]["lost"] == 0
    assert results["batched"]["processes2"]["lost"] == 0
    if db != "sqlite":
        assert results["generic"]["driver"] == "GenericDriver"
        assert results["ours"]["driver"] != "GenericDriver"


def run_batch_profile(*args: str) -> str:
    """Run ``bench/batches.py`` on 40 tasks, once, with ``args``; return what it printed."""
    return run_bench("batches.py", "--tasks", "40", "--repeats", "1", *args).stdout


@pytest.mark.parametrize("db", ["sqlite", "postgres"])
def test_batch_profile_runs_on_tiny_sizes(db: str) -> None:
    require(db)
    printed = run_batch_profile("--db", db, "--workload", "threads4")
    # 40 tasks in 4 threads: every task written, in at most one write per task.
    assert "lost 0" in printed, printed
    writes = int(printed.split(" writes of ")[0].rsplit(" ", 1)[1])
    assert 1 <= writes <= 40


@pytest.mark.parametrize("extra", [[], ["--gevent"]], ids=["threads", "gevent"])
def test_batch_profile_with_fake_writes_stores_nothing(extra: list[str]) -> None:
    # --fake-write measures the batching alone: writes are sleeps, nothing is stored.
    printed = run_batch_profile(
        "--db", "sqlite", "--workload", "lifecycle", "--fake-write", "0", *extra
    )
    assert "40 writes of 1.00 rows" in printed, printed
    assert printed.rstrip().endswith("lost -"), printed


@pytest.mark.parametrize("db", ["postgres", "mariadb"])
def test_cleanup_bench_runs_on_tiny_sizes(db: str, tmp_path: Path) -> None:
    require(db)
    out = tmp_path / "cleanup.json"
    completed = run_bench(
        "cleanup.py", "--db", db, "--expired", "3000", "--live", "200", "--batch-size", "500",
        "--at-rest", "0.5", "--raw-chunk-rows", "500", "--json", str(out),
    )  # fmt: skip
    assert "| cleanup / raw |" in completed.stdout
    assert "| raw client in chunks like ours |" in completed.stdout
    results = json.loads(out.read_text())
    assert results["report"]["rows"] == 3000
    assert results["report"]["chunks"] >= 6
    assert results["left_raw"] >= 200  # the live rows, and what the writer added
    assert results["left_ours"] >= 200  # the live rows, and what the writer added
    assert results["writer"]["during"]["n"] > 0
    assert results["raw_chunks"]["chunks"] >= 2
    assert results["writer"]["during_raw_chunks"]["n"] > 0


def test_wait_bench_runs_on_tiny_sizes(tmp_path: Path) -> None:
    require("postgres")
    out = tmp_path / "wait.json"
    completed = run_bench(
        "wait.py", "--tasks", "3", "--clients", "3", "--threads", "2", "--seconds", "3",
        "--lifecycle-seconds", "0.5", "--json", str(out),
    )  # fmt: skip
    assert "| commit to get() returning, p50" in completed.stdout
    results = json.loads(out.read_text())
    for mode in ("notify", "poll"):
        assert results[mode]["latency"]["p50_ms"] >= 0
        assert results[mode]["lifecycles_per_s"] > 0


@pytest.mark.parametrize("db", ["sqlite", "postgres"])
def test_profile_bench_runs_on_tiny_sizes(db: str) -> None:
    require(db)
    completed = run_bench("profile_calls.py", "--db", db, "--reads", "1000", "--lifecycles", "200")
    printed = completed.stdout
    assert f"## read on {db}: client CPU" in printed, printed
    assert f"## lifecycle on {db}: client CPU" in printed, printed
    assert "get_task_meta" in printed  # the profiled call, at the root of its tree
    assert "store_result" in printed


@pytest.mark.parametrize("db", ["postgres", "mariadb"])
def test_lifecycle_floor_bench_runs_on_tiny_sizes(db: str) -> None:
    require(db)
    completed = run_bench("lifecycle_floor.py", "--db", db, "--tasks", "50", "--rounds", "2")
    rows = {}
    for line in completed.stdout.splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if len(cells) == 4 and cells[1].isdigit():
            rows[cells[0]] = int(cells[1])
    names = ("raw", "floor", "lean", "ours")
    assert set(rows) == {*names, *(f"{name} hot" for name in names[1:])}, completed.stdout
    assert all(value > 0 for value in rows.values()), rows


def test_worker_bench_runs_on_tiny_sizes(tmp_path: Path) -> None:
    require("postgres")
    out = tmp_path / "worker.json"
    completed = run_bench(
        "worker.py", "--db", "postgres", "--tasks", "60", "--rounds", "1", "--no-upstream",
        "--json", str(out),
    )  # fmt: skip
    assert "| ours |" in completed.stdout
    assert "| no result store |" in completed.stdout
    results = json.loads(out.read_text())
    assert results["lost"] == {"ours": 0, "none": 0}
    assert results["rate"]["ours"] > 0


@pytest.mark.parametrize("db", ["postgres", "mariadb"])
def test_admin_bench_runs_on_tiny_sizes(db: str, tmp_path: Path) -> None:
    require(db)
    out = tmp_path / "admin.json"
    completed = run_bench(
        "admin.py", "--db", db, "--rows", "3000", "--small", "1000", "--repeats", "1",
        "--no-upstream", "--json", str(out),
    )  # fmt: skip
    for window in ("15m", "1h", "6h", "24h", "7d", "30d"):
        assert f"| dashboard, {window} |" in completed.stdout
    assert "| metrics scrape |" in completed.stdout
    results = json.loads(out.read_text())
    assert {int(rows) for rows in results["catch_up"]} == {1000, 3000}
    assert all(done["rows"] == int(rows) for rows, done in results["catch_up"].items())
    sizes = results["sizes"]
    for timings in sizes.values():
        assert {page["status"] for page in timings["ours"].values()} == {200}


def test_sqlite_indexes_bench_runs_on_tiny_sizes() -> None:
    completed = run_bench("sqlite_indexes.py", "--tasks", "50", "--rounds", "1")
    rows = [line for line in completed.stdout.splitlines() if line.startswith("| without")]
    assert len(rows) == 4, completed.stdout  # each of the three indexes, then all of them
    assert "| every index |" in completed.stdout


@pytest.mark.parametrize("db", ["sqlite", "postgres", "mariadb"])
def test_heartbeat_bench_runs_on_tiny_sizes(db: str) -> None:
    require(db)
    completed = run_bench(
        "heartbeat.py", "--db", db, "--beats", "5", "--workers", "3", "--started", "5"
    )
    assert "| elected (beat and sweep) |" in completed.stdout
    assert "| not elected (beat, election lost) |" in completed.stdout
