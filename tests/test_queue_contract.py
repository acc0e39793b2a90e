"""The job-queue contract, on both backends (a real SQLite file, a real redis-server): every
test takes the ``queue`` fixture, which runs it on each."""

from __future__ import annotations

import pytest

from agent.errors import (
    AgentError,
    AmbiguousJobError,
    InvalidJobUpdateError,
    JobNotFoundError,
    LeaseLostError,
)
from agent.queue.base import JobQueue, JobStatus
from agent.queue.refs import find_job
from tests.conftest import ManualClock
from tests.helpers import claim_next


def test_queue_implements_the_contract(queue: JobQueue) -> None:
    """SQLiteJobQueue satisfies the JobQueue protocol that other backends implement."""
    assert isinstance(queue, JobQueue)


def test_enqueue_returns_a_queued_job_with_its_fields(queue: JobQueue, clock: ManualClock) -> None:
    """A new job is queued, due now, with metadata and inbox stored."""
    job = queue.enqueue_job("/in/a.txt", "a.txt", {"size": 3}, inbox="docs", content_key="k1")
    assert job.status is JobStatus.QUEUED
    assert job.progress == 0 and job.retries == 0 and job.attempts == 0
    assert job.metadata == {"size": 3}
    assert job.inbox == "docs" and job.content_key == "k1"
    assert job.created_at == clock.now == job.run_after
    stored = queue.get_job_status(job.job_id)
    assert stored.file_path == "/in/a.txt" and stored.original_filename == "a.txt"


def test_enqueue_same_file_while_active_returns_existing_job(queue: JobQueue) -> None:
    """Queued or processing: a second enqueue of the same key is a no-op returning the first job."""
    first = queue.enqueue_job("/in/a.txt", content_key="same")
    again = queue.enqueue_job("/in/a.txt", content_key="same")
    assert again.job_id == first.job_id
    claimed = claim_next(queue, "w")
    assert claimed is not None
    while_processing = queue.enqueue_job("/in/a.txt", content_key="same")
    assert while_processing.job_id == first.job_id
    assert while_processing.lease_token is None, "the lease token must not leak to a non-holder"
    assert queue.get_pending_jobs_count() == 1


def test_enqueue_after_completion_makes_a_new_job(queue: JobQueue) -> None:
    """Once the job for a key has finished, the same key may be queued again."""
    first = queue.enqueue_job("/in/a.txt", content_key="same")
    claimed = claim_next(queue)
    assert claimed is not None
    queue.update_job_status(first.job_id, "completed", 100, lease_token=claimed.lease_token)
    second = queue.enqueue_job("/in/a.txt", content_key="same")
    assert second.job_id != first.job_id
    found = queue.find_job_by_key("same")
    assert found is not None and found.job_id == second.job_id


def test_default_key_is_the_file_path(queue: JobQueue) -> None:
    """Without a content key, the same path twice is deduplicated."""
    assert queue.enqueue_job("/in/x").job_id == queue.enqueue_job("/in/x").job_id
    assert queue.enqueue_job("/in/y").job_id != queue.enqueue_job("/in/x").job_id


def test_claims_are_first_in_first_out(queue: JobQueue, clock: ManualClock) -> None:
    """Due jobs are claimed in the order they were queued."""
    ids = []
    for i in range(5):
        ids.append(queue.enqueue_job(f"/in/{i}").job_id)
        clock.advance(0.001)
    claimed = [claim_next(queue, "w").job_id for _ in range(5)]
    assert claimed == ids
    assert queue.get_next_job("w") is None


def test_claim_sets_lease_and_worker(queue: JobQueue, clock: ManualClock) -> None:
    """A claim sets status, attempt, worker, start time and lease expiry."""
    queue.enqueue_job("/in/a")
    job = claim_next(queue, "worker-7", lease_seconds=30)
    assert job is not None and job.lease_token
    assert job.status is JobStatus.PROCESSING
    assert job.claimed_by == "worker-7" and job.attempts == 1
    assert job.started_at == clock.now and job.timeout_at == clock.now + 30


def test_a_job_keeps_its_first_start_across_turns(queue: JobQueue, clock: ManualClock) -> None:
    """A job given back (paused for waiting files) and claimed again keeps the time it first
    started: its record shows when it began, not when it last resumed."""
    queue.enqueue_job("/in/long")
    first = claim_next(queue)
    clock.advance(40)
    queue.release_job(first, "paused", metadata={"paused": True, "turns": 1})
    clock.advance(5)
    again = claim_next(queue)
    assert again.job_id == first.job_id and again.attempts == 1  # a pause is no attempt
    assert again.started_at == first.started_at == clock.now - 45


def test_a_job_is_found_by_id_prefix_or_file_name(queue: JobQueue) -> None:
    """``find_job`` takes what people type: the full id, a unique prefix, the file name (an
    exact name before names holding it); a name several jobs share lists them all."""
    jobs = [queue.enqueue_job(f"/in/{name}", name) for name in
            ("report.pdf", "report.pdf.bak", "minutes-1.txt", "minutes-2.txt")]
    report = jobs[0]
    assert find_job(queue, report.job_id).job_id == report.job_id
    assert find_job(queue, report.job_id[:12].upper()).job_id == report.job_id
    assert find_job(queue, "report.pdf").job_id == report.job_id
    assert find_job(queue, "2.txt").job_id == jobs[3].job_id
    with pytest.raises(AmbiguousJobError, match="2 jobs match 'MINUTES'") as several:
        find_job(queue, "MINUTES")
    assert set(several.value.job_ids) == {jobs[2].job_id, jobs[3].job_id}
    with pytest.raises(JobNotFoundError, match="no job has the id or file name 'nope'"):
        find_job(queue, "nope")


def test_delayed_job_is_not_claimed_before_it_is_due(queue: JobQueue, clock: ManualClock) -> None:
    """run_after holds a job back until its time comes."""
    queue.enqueue_job("/in/later", delay=50)
    assert queue.get_next_job() is None
    clock.advance(50)
    assert queue.get_next_job() is not None


def test_progress_and_completion_with_lease(queue: JobQueue, clock: ManualClock) -> None:
    """The holder reports progress and completes; metadata patches merge."""
    queue.enqueue_job("/in/a", metadata={"size": 1})
    job = claim_next(queue)
    mid = queue.update_job_status(job.job_id, "processing", 40, "embedding",
                                  metadata={"stage": "embed"}, lease_token=job.lease_token)
    assert (mid.progress, mid.message, mid.status) == (40, "embedding", JobStatus.PROCESSING)
    clock.advance(2)
    done = queue.update_job_status(job.job_id, JobStatus.COMPLETED, 100, "ok",
                                   metadata={"chunks": 3}, lease_token=job.lease_token)
    assert done.status is JobStatus.COMPLETED and done.finished_at == clock.now
    assert done.metadata == {"size": 1, "stage": "embed", "chunks": 3}
    assert done.lease_token is None and done.timeout_at is None


def test_a_wrong_lease_token_is_refused(queue: JobQueue) -> None:
    """Updating a claimed job with a token that is not its holder's changes nothing."""
    queue.enqueue_job("/in/a")
    job = claim_next(queue)
    with pytest.raises(LeaseLostError):
        queue.update_job_status(job.job_id, "completed", lease_token="not-the-token")
    assert queue.get_job_status(job.job_id).status is JobStatus.PROCESSING


def test_the_seeds_unfenced_calling_style_still_works(queue: JobQueue) -> None:
    """Code written against the predecessor updates the job it claimed by id alone: progress,
    message and the final status apply (unfenced, as the seed did), and the lease is cleared."""
    queue.enqueue_job("/in/a", "a.txt", {"source": "seed"})
    job = claim_next(queue)
    step = queue.update_job_status(job.job_id, "processing", progress=40, message="embedding")
    assert (step.status, step.progress, step.message) == (JobStatus.PROCESSING, 40, "embedding")
    assert step.lease_token is None, "the token stays private to its holder"
    done = queue.update_job_status(job.job_id, "completed", progress=100, message="done",
                                   metadata={"chunks": 3})
    assert done.status is JobStatus.COMPLETED and done.timeout_at is None
    assert done.metadata == {"source": "seed", "chunks": 3}
    assert queue.get_pending_jobs_count() == 0
    with pytest.raises(LeaseLostError):  # the holder's own token no longer applies
        queue.update_job_status(job.job_id, "failed", lease_token=job.lease_token)


def test_metadata_null_removes_a_key(queue: JobQueue) -> None:
    """A patch value of None deletes the key (JSON merge patch), on every backend."""
    queue.enqueue_job("/in/a", metadata={"error_type": "WorkerDied", "size": 3})
    job = claim_next(queue)
    done = queue.update_job_status(job.job_id, "completed", lease_token=job.lease_token,
                                   metadata={"error_type": None, "chunks": 2})
    assert done.metadata == {"size": 3, "chunks": 2}


def test_nested_metadata_merges_the_same_way_on_every_backend(queue: JobQueue) -> None:
    """A patch merges into nested objects key by key, a null inside removes that key, and a
    list replaces the list (JSON merge patch, RFC 7396): SQLite's json_patch and the Redis
    scripts agree (before, Redis replaced a nested object whole)."""
    queue.enqueue_job("/in/a", metadata={"stages": {"detect": 0.1, "extract": 2.0},
                                         "history": [{"attempt": 1}], "size": 3})
    job = claim_next(queue)
    done = queue.update_job_status(
        job.job_id, "completed", lease_token=job.lease_token,
        metadata={"stages": {"embed": 4.0, "detect": None}, "history": [{"attempt": 2}]})
    assert done.metadata == {"stages": {"extract": 2.0, "embed": 4.0},
                             "history": [{"attempt": 2}], "size": 3}
    assert queue.get_job_status(job.job_id).metadata == done.metadata


def test_what_the_agent_records_reads_back_as_its_typed_record(queue: JobQueue) -> None:
    """The typed record's patches (the processor's own) are stored and read back as the same
    record on every backend; an unknown key is refused where it is written, and a value of the
    wrong type in a stored job (hand-made, or older) is left out, never failing a reader."""
    from agent.queue.record import RECORD_VERSION, JobRecord, record_patch

    queue.enqueue_job("/in/a", metadata=record_patch(size=3, source="scan", relpath="a.txt"))
    job = claim_next(queue)
    queue.release_job(job, "paused", metadata=record_patch(paused=True, turns=1))
    job = claim_next(queue)
    done = queue.update_job_status(job.job_id, "completed", lease_token=job.lease_token,
                                   metadata=record_patch(
                                       paused=None, document_id="doc_1", chunks=2,
                                       warnings=["page 2: not read"], stages={"embed": 1.5},
                                       history=[{"attempt": 1, "stage": "embed"}]))
    record = done.record
    assert record.record_version == RECORD_VERSION
    assert (record.size, record.source, record.relpath) == (3, "scan", "a.txt")
    assert (record.paused, record.turns, record.document_id, record.chunks) == \
        (False, 1, "doc_1", 2)
    assert record.warnings == ["page 2: not read"] and record.stages == {"embed": 1.5}
    assert record.history[0].stage == "embed"
    with pytest.raises(TypeError, match="not fields of a job's record: chunk"):
        record_patch(chunk=2)
    with pytest.raises(ValueError):
        record_patch(chunks="many")
    odd = JobRecord.of({"chunks": "many", "turns": 2, "client": "seed"})
    assert odd.chunks is None and odd.turns == 2 and odd.model_extra == {"client": "seed"}


def test_a_unique_prefix_finds_its_job(queue: JobQueue) -> None:
    """As git takes a short hash: four or more leading hex digits that match one job."""
    jobs = [queue.enqueue_job(f"/in/{i}") for i in range(40)]
    target = jobs[7].job_id
    prefix = next(target[:n] for n in range(4, 33)
                  if sum(j.job_id.startswith(target[:n]) for j in jobs) == 1)
    assert queue.resolve_job_id(prefix) == target
    assert queue.resolve_job_id(target) == target
    unused = next(p for p in (f"{n:04x}" for n in range(65536))
                  if not any(j.job_id.startswith(p) for j in jobs))
    with pytest.raises(JobNotFoundError):
        queue.resolve_job_id(unused)
    with pytest.raises(InvalidJobUpdateError, match="at least 4"):
        queue.resolve_job_id("ab")
    shared = next((a.job_id[:4] for a in jobs for b in jobs
                   if a is not b and a.job_id[:4] == b.job_id[:4]), None)
    if shared is not None:
        with pytest.raises(InvalidJobUpdateError, match="several jobs"):
            queue.resolve_job_id(shared)


def test_stale_holder_cannot_finish_a_reclaimed_job(queue: JobQueue, clock: ManualClock) -> None:
    """After its lease expired and another worker took the job, the old holder's update fails."""
    queue.enqueue_job("/in/a")
    old = claim_next(queue, "old", lease_seconds=10)
    clock.advance(11)
    assert queue.cleanup_expired_jobs() == 1
    clock.advance(queue.retry_policy.delay(0))
    new = claim_next(queue, "new")
    assert new is not None and new.job_id == old.job_id and new.attempts == 2
    with pytest.raises(LeaseLostError):
        queue.update_job_status(old.job_id, "completed", lease_token=old.lease_token)
    with pytest.raises(LeaseLostError):
        queue.extend_lease(old)
    with pytest.raises(LeaseLostError):
        queue.retry_or_fail(old, "boom")
    done = queue.update_job_status(new.job_id, "completed", lease_token=new.lease_token)
    assert done.status is JobStatus.COMPLETED and done.claimed_by == "new"


def test_expired_leases_requeue_with_backoff_then_time_out(queue: JobQueue, clock: ManualClock) -> None:
    """Reclaim retries while retries remain (backoff 10 s, 20 s) and then marks the job timeout."""
    job = queue.enqueue_job("/in/a")
    delays = []
    for _ in range(queue.retry_policy.max_retries):
        claimed = claim_next(queue, lease_seconds=5)
        assert claimed is not None
        clock.advance(6)
        reclaimed = queue.reclaim_expired_leases()
        assert [j.job_id for j in reclaimed] == [job.job_id]
        assert reclaimed[0].status is JobStatus.QUEUED
        delays.append(reclaimed[0].run_after - clock.now)
        assert queue.get_next_job() is None, "backoff must hold the job back"
        clock.advance(delays[-1])
    assert delays == [10, 20]
    queue.get_next_job(lease_seconds=5)
    clock.advance(6)
    final = queue.reclaim_expired_leases()
    assert final[0].status is JobStatus.TIMEOUT and final[0].finished_at == clock.now
    assert "no retries left" in (final[0].message or "")


def test_unexpired_leases_are_left_alone(queue: JobQueue, clock: ManualClock) -> None:
    """cleanup_expired_jobs never touches a job whose lease is still valid."""
    queue.enqueue_job("/in/a")
    queue.get_next_job(lease_seconds=60)
    clock.advance(59)
    assert queue.cleanup_expired_jobs() == 0


def test_extend_lease_keeps_a_long_job(queue: JobQueue, clock: ManualClock) -> None:
    """A holder that extends its lease is not reclaimed."""
    queue.enqueue_job("/in/a")
    job = claim_next(queue, lease_seconds=10)
    clock.advance(8)
    queue.extend_lease(job, 10)
    clock.advance(8)
    assert queue.cleanup_expired_jobs() == 0
    assert job.timeout_at == clock.now + 2


def test_retry_or_fail_backs_off_then_fails(queue: JobQueue, clock: ManualClock) -> None:
    """A transient failure is retried with capped exponential backoff, then failed for good."""
    queue.enqueue_job("/in/a")
    waits = []
    for _ in range(2):
        job = claim_next(queue)
        after = queue.retry_or_fail(job, "disk busy")
        assert after.status is JobStatus.QUEUED
        waits.append(after.run_after - clock.now)
        clock.advance(after.run_after - clock.now)
    job = claim_next(queue)
    final = queue.retry_or_fail(job, "disk busy", metadata={"stage": "index"})
    assert waits == [10, 20]
    assert final.status is JobStatus.FAILED and final.retries == 2
    assert final.metadata["stage"] == "index" and final.message == "disk busy"


def test_retry_or_fail_without_counting_keeps_the_budget(queue: JobQueue, clock: ManualClock) -> None:
    """Shutdown requeues at once without spending a retry, ahead of jobs already waiting."""
    queue.enqueue_job("/in/a")
    job = claim_next(queue)
    clock.advance(1)
    waiting = queue.enqueue_job("/in/b")
    back = queue.retry_or_fail(job, "shutting down", count_attempt=False)
    assert back.status is JobStatus.QUEUED and back.retries == 0 and back.run_after <= clock.now
    assert claim_next(queue).job_id == job.job_id, "the interrupted job resumes first"
    assert claim_next(queue).job_id == waiting.job_id


def test_release_with_a_delay_waits_and_keeps_the_budget(queue: JobQueue,
                                                         clock: ManualClock) -> None:
    """A job released with a delay (its file was still changing) waits, uncounted: the claim
    it gave back is not an attempt either."""
    queue.enqueue_job("/in/a")
    job = claim_next(queue)
    back = queue.release_job(job, "file changed", delay=5, metadata={"changes": 1})
    assert back.status is JobStatus.QUEUED and back.retries == 0
    assert back.metadata["changes"] == 1
    assert queue.get_next_job() is None
    clock.advance(6)
    again = claim_next(queue)
    assert again is not None and again.job_id == job.job_id and again.attempts == 1


def test_operator_retry_requeues_failed_job(queue: JobQueue) -> None:
    """retry_job puts a failed job back with a fresh budget; a queued one cannot be retried."""
    queue.enqueue_job("/in/a")
    job = claim_next(queue)
    queue.update_job_status(job.job_id, "failed", message="corrupt", lease_token=job.lease_token)
    again = queue.retry_job(job.job_id)
    assert again.status is JobStatus.QUEUED and again.retries == 0 and again.finished_at is None
    with pytest.raises(InvalidJobUpdateError, match="only failed or timed-out"):
        queue.retry_job(job.job_id)


@pytest.mark.parametrize(
    ("start", "target"),
    [("completed", "queued"), ("completed", "failed"), ("queued", "completed"),
     ("queued", "processing"), ("failed", "completed")],
)
def test_invalid_transitions_are_refused(queue: JobQueue, start: str, target: str) -> None:
    """Transitions outside the lifecycle raise a clear error and change nothing."""
    job = queue.enqueue_job("/in/a")
    if start != "queued":
        claimed = claim_next(queue)
        queue.update_job_status(job.job_id, start, lease_token=claimed.lease_token)
    with pytest.raises(InvalidJobUpdateError, match="not allowed"):
        queue.update_job_status(job.job_id, target)
    assert queue.get_job_status(job.job_id).status == start


def test_queued_job_can_be_cancelled_as_failed(queue: JobQueue) -> None:
    """An operator (or the watcher, for an oversize file) may fail a job that never ran."""
    job = queue.enqueue_job("/in/a")
    failed = queue.update_job_status(job.job_id, "failed", message="too large")
    assert failed.status is JobStatus.FAILED and failed.finished_at is not None


@pytest.mark.parametrize("progress", [-1, 101, 50.5, True, "50"])
def test_bad_progress_is_refused(queue: JobQueue, progress: object) -> None:
    """Progress must be an integer 0–100."""
    queue.enqueue_job("/in/a")
    job = claim_next(queue)
    with pytest.raises(InvalidJobUpdateError, match="progress"):
        queue.update_job_status(job.job_id, "processing", progress,  # type: ignore[arg-type]
                                lease_token=job.lease_token)


def test_unknown_status_and_job_are_clear_errors(queue: JobQueue) -> None:
    """An unknown status names the allowed ones; an unknown id raises JobNotFoundError."""
    job = queue.enqueue_job("/in/a")
    with pytest.raises(InvalidJobUpdateError, match="unknown status 'done'"):
        queue.update_job_status(job.job_id, "done")
    with pytest.raises(JobNotFoundError, match="no job with id 'nope'"):
        queue.get_job_status("nope")
    with pytest.raises(JobNotFoundError):
        queue.update_job_status("nope", "failed")
    assert issubclass(JobNotFoundError, AgentError)


def test_bad_enqueue_arguments(queue: JobQueue) -> None:
    """An empty path or a negative delay is refused."""
    with pytest.raises(InvalidJobUpdateError):
        queue.enqueue_job("")
    with pytest.raises(InvalidJobUpdateError):
        queue.enqueue_job("/in/a", delay=-1)


def test_list_jobs_filters_and_orders_newest_first(queue: JobQueue) -> None:
    """list_jobs filters by status and inbox, newest first, honouring the limit."""
    a = queue.enqueue_job("/in/a", inbox="one")
    b = queue.enqueue_job("/in/b", inbox="two")
    c = queue.enqueue_job("/in/c", inbox="one")
    assert [j.job_id for j in queue.list_jobs()] == [c.job_id, b.job_id, a.job_id]
    assert [j.job_id for j in queue.list_jobs(inbox="one", limit=1)] == [c.job_id]
    queue.get_next_job()
    assert [j.job_id for j in queue.list_jobs(status="processing")] == [a.job_id]
    with pytest.raises(InvalidJobUpdateError):
        queue.list_jobs(limit=0)


def test_counts_and_stats_follow_every_transition(queue: JobQueue, clock: ManualClock) -> None:
    """Trigger-kept counts equal a real count(*) after every kind of transition and purge."""
    for i in range(6):
        queue.enqueue_job(f"/in/{i}")
    clock.advance(5)
    j1, j2, j3, j4 = (claim_next(queue, lease_seconds=10) for _ in range(4))
    queue.update_job_status(j1.job_id, "completed", lease_token=j1.lease_token)
    queue.update_job_status(j2.job_id, "failed", lease_token=j2.lease_token)
    queue.retry_or_fail(j3, "transient")
    queue.retry_job(j2.job_id)

    def real_counts() -> dict[str, int]:
        from collections import Counter

        rows = Counter(j.status.value for j in queue.list_jobs(limit=1000))
        return {s.value: rows.get(s.value, 0) for s in JobStatus}

    assert {k.value: v for k, v in queue.count_by_status().items()} == real_counts()
    stats = queue.stats()
    assert stats.counts[JobStatus.QUEUED] == 4 and stats.waiting_retry == 1 and stats.due == 3
    assert stats.oldest_queued_age == pytest.approx(5)
    assert stats.expired_leases == 0
    clock.advance(11)
    assert queue.stats().expired_leases == 1  # j4
    assert queue.get_pending_jobs_count() == 5
    clock.advance(1000)
    assert queue.purge(older_than_seconds=10) == 1
    assert {k.value: v for k, v in queue.count_by_status().items()} == real_counts()


def test_purge_keeps_recent_and_unfinished_jobs(queue: JobQueue, clock: ManualClock) -> None:
    """Only finished jobs older than the cut-off are deleted, in batches."""
    for i in range(7):
        queue.enqueue_job(f"/in/{i}")
    for _ in range(5):
        j = claim_next(queue)
        queue.update_job_status(j.job_id, "completed", lease_token=j.lease_token)
    clock.advance(100)
    j = claim_next(queue)
    queue.update_job_status(j.job_id, "completed", lease_token=j.lease_token)
    assert queue.purge(older_than_seconds=50, batch=2) == 5
    remaining = {j.status for j in queue.list_jobs()}
    assert remaining == {JobStatus.COMPLETED, JobStatus.QUEUED}
    with pytest.raises(InvalidJobUpdateError):
        queue.purge(-1)


def test_names_that_are_not_utf8_round_trip(queue: JobQueue) -> None:
    """A name with undecodable bytes (and a backslash) is stored losslessly and found again."""
    name = "bad\udcff\\x41.txt"
    path = f"/in/{name}"
    key = f"box:{name}:1:2:3"
    job = queue.enqueue_job(path, name, {"relpath": name}, content_key=key)
    assert queue.known_keys([key, "box:other"]) == {key}
    assert queue.queued_paths([path, "/in/other"]) == {path}
    found = queue.find_job_by_key(key)
    assert found is not None and found.job_id == job.job_id
    claimed = claim_next(queue)
    assert (claimed.file_path, claimed.original_filename) == (path, name)
    assert claimed.content_key == key and claimed.metadata["relpath"] == name
    assert queue.enqueue_job(path, name, content_key=key).job_id == job.job_id, "deduped"


def test_enqueue_many_queues_a_batch_and_dedupes(queue: JobQueue) -> None:
    """A batch is queued in order; an item whose key has an active job returns that job."""
    from agent.queue.base import NewJob

    first = queue.enqueue_job("/in/a", content_key="k-a")
    jobs = queue.enqueue_many([NewJob("/in/a", "a", None, "box", "k-a"),
                               NewJob("/in/b", "b", {"size": 2}, "box", "k-b")])
    assert jobs[0].job_id == first.job_id
    assert jobs[1].status is JobStatus.QUEUED and jobs[1].metadata == {"size": 2}
    assert queue.enqueue_many([]) == []
    assert queue.get_pending_jobs_count() == 2


def test_known_keys_cover_every_status(queue: JobQueue) -> None:
    """known_keys names the keys that have a job, whatever its status; others are absent."""
    queue.enqueue_job("/in/a", content_key="k-a")
    claimed = claim_next(queue)
    queue.update_job_status(claimed.job_id, "completed", lease_token=claimed.lease_token)
    queue.enqueue_job("/in/b", content_key="k-b")
    assert queue.known_keys(["k-a", "k-b", "k-c"]) == {"k-a", "k-b"}
    assert queue.known_keys([]) == set()


def test_release_abandoned_requeues_then_fails(queue: JobQueue, clock: ManualClock) -> None:
    """A dead holder's job is taken back (counting an attempt) until retries run out; a job
    that is not processing is returned as it is."""
    queued = queue.enqueue_job("/in/a")
    assert queue.release_abandoned(queued.job_id, "not running").status is JobStatus.QUEUED
    for attempt in range(queue.retry_policy.max_retries):
        job = claim_next(queue)
        back = queue.release_abandoned(job.job_id, "agent died")
        assert back.status is JobStatus.QUEUED and back.retries == attempt + 1
        assert back.lease_token is None
        clock.advance(1)
    job = claim_next(queue)
    final = queue.release_abandoned(job.job_id, "agent died")
    assert final.status is JobStatus.FAILED and "no retries left" in (final.message or "")


def test_annotate_job_merges_whatever_the_status(queue: JobQueue) -> None:
    """annotate_job adds facts to a finished job's metadata; an unknown job is an error."""
    queue.enqueue_job("/in/a", metadata={"size": 1})
    job = claim_next(queue)
    queue.update_job_status(job.job_id, "failed", lease_token=job.lease_token)
    queue.annotate_job(job.job_id, {"failed_path": "/failed/a"})
    assert queue.get_job_status(job.job_id).metadata == {"size": 1, "failed_path": "/failed/a"}
    with pytest.raises(JobNotFoundError):
        queue.annotate_job("0" * 32, {"x": 1})


def test_check_writable_and_identity(queue: JobQueue) -> None:
    """check_writable passes on a healthy store; identity names the queue, never a secret."""
    queue.check_writable()
    ident = queue.identity()
    assert ident.startswith(("sqlite:", "redis:")) and "@" not in ident


def test_list_jobs_of_one_inbox_and_status_is_never_cut_short(queue: JobQueue) -> None:
    """Many jobs of other inboxes between them: filtering by inbox (and status) still returns
    `limit` jobs when there are that many."""
    for i in range(300):
        queue.enqueue_job(f"/in/{i}", inbox="rare" if i % 50 == 0 else "busy")
    rare = queue.list_jobs(inbox="rare", limit=5)
    assert [j.file_path for j in rare] == ["/in/250", "/in/200", "/in/150", "/in/100", "/in/50"]
    queued = queue.list_jobs(status="queued", inbox="rare", limit=6)
    assert len(queued) == 6 and {j.inbox for j in queued} == {"rare"}
    assert len(queue.list_jobs(inbox="busy", limit=1000)) == 294


def test_backlog_is_counted_per_inbox(queue: JobQueue, clock: ManualClock) -> None:
    """stats() splits the backlog of each inbox into due and waiting to retry."""
    for i in range(3):
        queue.enqueue_job(f"/in/a{i}", inbox="a")
    queue.enqueue_job("/in/b0", inbox="b")
    job = claim_next(queue)  # a0
    queue.retry_or_fail(job, "flaky")  # back to the queue, due in 10 s
    stats = queue.stats()
    assert dict(stats.backlog_by_inbox) == {"a": (2, 1), "b": (1, 0)}
    assert stats.due == 3 and stats.waiting_retry == 1
    clock.advance(11)
    assert dict(queue.stats().backlog_by_inbox)["a"] == (3, 0)


def test_uncounted_abandon_goes_back_first_with_its_budget(queue: JobQueue,
                                                           clock: ManualClock) -> None:
    """A job of a dead run taken back uncounted (the agent holds its lock, so the run is dead)
    keeps its retries and attempts, carries the patch, and is claimed before other due jobs."""
    queue.enqueue_job("/in/a")
    job = claim_next(queue, "host:abc:0:123")
    waiting = queue.enqueue_job("/in/b")
    clock.advance(1)
    back = queue.release_abandoned(job.job_id, "agent stopped", counted=False,
                                   metadata={"recoveries": 1})
    assert back.status is JobStatus.QUEUED and back.retries == 0 and back.attempts == 0
    assert back.metadata["recoveries"] == 1 and back.lease_token is None
    assert claim_next(queue).job_id == job.job_id, "the interrupted job resumes first"
    assert claim_next(queue).job_id == waiting.job_id


def test_pages_of_jobs_follow_their_cursor_to_the_end(queue: JobQueue,
                                                      clock: ManualClock) -> None:
    """Paging newest first by cursor shows every job once, in order, whatever the filter;
    the count agrees with the pages, and a forged cursor is refused."""
    from agent.queue.base import JobFilter

    made = []
    for n in range(23):
        made.append(queue.enqueue_job(f"/in/f{n}", f"Report-{n}.PDF" if n % 3 == 0 else f"n{n}.txt",
                                      inbox="a" if n % 2 else "b"))
        clock.advance(1)
    claimed = claim_next(queue)  # the oldest is now processing
    for where in (JobFilter(), JobFilter(inbox="a"), JobFilter(status=JobStatus.QUEUED),
                  JobFilter(status=JobStatus.QUEUED, inbox="b"), JobFilter(name="report")):
        expected = [j.job_id for j in reversed(made)
                    if (where.inbox is None or j.inbox == where.inbox)
                    and (where.status is None or j.job_id != claimed.job_id)
                    and where.matches_name(j.original_filename)]
        seen, cursor = [], None
        while True:
            page = queue.page_jobs(where, limit=4, cursor=cursor)
            assert len(page.jobs) <= 4
            seen += [j.job_id for j in page.jobs]
            cursor = page.next_cursor
            if cursor is None:
                break
        assert seen == expected, where
        assert queue.count_jobs(where) == len(expected), where
    with pytest.raises(InvalidJobUpdateError, match="not a cursor"):
        queue.page_jobs(cursor="'; DROP TABLE job_queue; --")


def test_a_paused_job_is_not_the_oldest_waiting(queue: JobQueue, clock: ManualClock) -> None:
    """A job that ran and went back (paused to let others through) has waited since it went
    back, not since it was first queued: status does not call it 28 minutes old."""
    queue.enqueue_job("/in/long")
    job = claim_next(queue)
    clock.advance(1800)
    queue.release_job(job, "paused", delay=0.001, metadata={"paused": True})
    clock.advance(5)
    age = queue.stats().oldest_queued_age
    assert age is not None and 4 <= age <= 6
