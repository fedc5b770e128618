"""The event jobs run beside the main graph: the write-back pipeline fixture serves both."""

from tests.defs.writeback.conftest import pipeline  # noqa: F401 - a fixture, found by name
