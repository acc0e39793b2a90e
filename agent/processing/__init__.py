"""Processing: one job at a time through the worker process, its failures, retries and recovery."""
