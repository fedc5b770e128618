"""The production code location: same graph, resources from environment variables (EnvVar)."""

from dagster import Definitions, definitions

from ps_pipelines.definitions import build_definitions


@definitions
def defs() -> Definitions:
    return build_definitions("production")
