"""ingest-agent: drop-folder ingestion with a durable job queue and offline embeddings."""

from __future__ import annotations

__version__ = "0.1.0"
