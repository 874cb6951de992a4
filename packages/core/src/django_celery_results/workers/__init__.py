"""The worker registry: each worker's row, kept by its own heartbeats (``docs/workers.md``)."""
