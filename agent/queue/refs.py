"""The job a person names: the same references for ``job``, ``retry`` and the API."""

from __future__ import annotations

from agent.errors import AmbiguousJobError, InvalidJobUpdateError, JobNotFoundError
from agent.queue.base import Job, JobFilter, JobQueue

MAX_NAME_MATCHES = 20  # jobs listed when a name matches several


def find_job(queue: JobQueue, reference: str) -> Job:
    """The one job ``reference`` names: its id, a unique prefix of it (four or more hex digits,
    as git takes a commit's hash) or its file name (an exact name before names holding it).

    Raises ``JobNotFoundError`` when nothing matches and ``AmbiguousJobError`` with the
    matching ids (newest first, at most ``MAX_NAME_MATCHES``) when several do, so the caller
    can list them."""
    wanted = reference.strip()
    by_id: InvalidJobUpdateError | None = None
    try:
        return queue.get_job_status(queue.resolve_job_id(wanted.lower()))
    except AmbiguousJobError as exc:
        by_id = exc
    except (JobNotFoundError, InvalidJobUpdateError):
        pass
    named = queue.page_jobs(JobFilter(name=wanted), limit=MAX_NAME_MATCHES).jobs if wanted \
        else []
    matches = [j for j in named if j.original_filename == wanted] or named
    if len(matches) == 1:
        return matches[0]
    if matches:
        more = "+" if len(named) == MAX_NAME_MATCHES else ""
        raise AmbiguousJobError(f"{len(matches)}{more} jobs match {reference!r}: give one's id "
                                "(or a longer part of it)", [j.job_id for j in matches])
    if by_id is not None:
        raise by_id
    raise JobNotFoundError(f"no job has the id or file name {reference!r}")
