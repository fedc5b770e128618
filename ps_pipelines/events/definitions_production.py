"""The production write-back code location: resources from environment variables (EnvVar)."""

from dagster import Definitions, definitions

from ps_pipelines.events.definitions import build_event_definitions


@definitions
def defs() -> Definitions:
    return build_event_definitions("production")
