"""The event model, its validation, and the privacy pipeline (no I/O here)."""
