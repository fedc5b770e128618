"""Dagster side of the write-back: sensors that start the posting jobs, and failure alerts."""
