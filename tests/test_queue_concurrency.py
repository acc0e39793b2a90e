"""Two processes claiming from one SQLite file never get the same job."""

from __future__ import annotations

import multiprocessing as mp
from collections import Counter
from pathlib import Path

from agent.queue.base import JobStatus
from agent.queue.sqlite import SQLiteJobQueue

N_JOBS = 20_000


def _consume(path: str, worker: str, out: mp.Queue) -> None:
    q = SQLiteJobQueue(path, busy_timeout=30)
    claimed = []
    while (job := q.get_next_job(worker)) is not None:
        q.update_job_status(job.job_id, "completed", 100, lease_token=job.lease_token)
        claimed.append(job.job_id)
    q.close()
    out.put(claimed)




def test_two_processes_claim_tens_of_thousands_without_duplicates(tmp_path: Path) -> None:
    """20,000 jobs drained by two consumer processes: every job claimed exactly once."""
    path = str(tmp_path / "q.db")
    with SQLiteJobQueue(path) as q:
        for i in range(N_JOBS):
            q.enqueue_job(f"/in/{i}")
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_consume, args=(path, f"w{n}", out)) for n in range(2)]
    for p in procs:
        p.start()
    results = [out.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    claimed = Counter(job_id for batch in results for job_id in batch)
    assert sum(claimed.values()) == N_JOBS
    assert len(claimed) == N_JOBS, "some job was claimed twice"
    assert all(len(batch) > 0 for batch in results), "both processes should have claimed work"
    with SQLiteJobQueue(path) as q:
        assert q.count_by_status()[JobStatus.COMPLETED] == N_JOBS


def test_concurrent_enqueue_of_the_same_keys_dedupes(tmp_path: Path) -> None:
    """Two processes enqueueing the same 2,000 keys at once create each job only once."""
    path = str(tmp_path / "q.db")
    SQLiteJobQueue(path).close()
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_produce_same, args=(path,)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    with SQLiteJobQueue(path) as q:
        assert q.count_by_status()[JobStatus.QUEUED] == 2_000


def _produce_same(path: str) -> None:
    q = SQLiteJobQueue(path, busy_timeout=30)
    for i in range(2_000):
        q.enqueue_job(f"/in/{i}", content_key=f"key-{i}")
    q.close()
