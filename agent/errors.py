"""One exception hierarchy, so callers catch ``AgentError`` and print one clear line."""

from __future__ import annotations


class AgentError(Exception):
    """Base of every error the agent raises on purpose."""


class ConfigError(AgentError):
    """The configuration file or an override is invalid; the message names file, key and reason."""


class QueueError(AgentError):
    """A job-queue operation could not be done."""


class JobNotFoundError(QueueError, KeyError):
    """No job has the given id."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "job not found"


class InvalidJobUpdateError(QueueError, ValueError):
    """A status transition, progress value or argument that the queue refuses."""


class AmbiguousJobError(InvalidJobUpdateError):
    """A job reference (an id's prefix, a file name) that names several jobs; ``job_ids`` are
    the first few of them, newest first for names."""

    def __init__(self, message: str, job_ids: list[str]) -> None:
        super().__init__(message)
        self.job_ids = job_ids


class LeaseLostError(QueueError):
    """The caller's lease on a job expired or was taken over; its update was not applied."""


class QueueBusyError(QueueError):
    """The queue did not accept a job in time (locked, or its disk full)."""


class QueueDatabaseError(QueueError):
    """The queue's database file is unusable (not SQLite, corrupt, or from a newer version)."""


class ProcessingError(AgentError):
    """A job's file could not be ingested; ``stage`` says where it failed."""

    def __init__(self, message: str, *, stage: str = "") -> None:
        super().__init__(message)
        self.stage = stage


class PermanentError(ProcessingError):
    """Retrying cannot help: unsupported type, empty text, corrupt file, too large."""


class TransientError(ProcessingError):
    """Retrying may help: I/O error, busy database, full disk, crashed worker."""


class NotARegularFileError(AgentError):
    """A path that should hold a file's content is a FIFO, socket, device, folder or link."""


class FolderSwappedError(AgentError):
    """A configured folder is no longer the folder the agent pinned at start (replaced by a
    link or another folder): the agent stops using it rather than touch another folder."""


class WorkerStartError(AgentError):
    """The worker could not start (the model failed to load, say)."""


class SearchUsageError(AgentError):
    """The request cannot be answered as asked (an empty query, an unknown mode)."""


class FileChangedError(TransientError):
    """The file changed while it was processed: the job goes back to the queue uncounted."""


class IndexStoreError(AgentError):
    """The index database is unusable."""


class EmbeddingError(AgentError):
    """The embedding model could not be prepared or loaded."""


class LockHeldError(AgentError):
    """Another agent holds what this one needs; the message names it."""


class UploadRejected(AgentError):
    """The client sent something the API will not take; ``status`` is the HTTP answer."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class SearchSocketUnavailable(AgentError):
    """No agent answers on the socket (none runs, or it is another user's)."""


class TooManyWrongTokens(AgentError):
    """This client address sent too many wrong tokens; it may try again in ``retry_after`` s."""

    def __init__(self, retry_after: float) -> None:
        self.retry_after = max(1, round(retry_after + 0.5))
        super().__init__(f"too many wrong tokens from this address; try again in "
                         f"{self.retry_after} s")
