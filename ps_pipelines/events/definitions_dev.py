"""The write-back code location of ``ps-pipelines dev``: the sandbox and warehouse that command
started, named by ``PS_SANDBOX_URL`` and ``PS_WAREHOUSE_PATH`` (read at run time, never at import)."""

from dagster import Definitions, EnvVar, definitions

from ps_pipelines.events.definitions import build_event_definitions
from ps_pipelines.resources import SANDBOX_URL_ENV, WAREHOUSE_PATH_ENV


@definitions
def defs() -> Definitions:
    return build_event_definitions("local", sandbox_url=EnvVar(SANDBOX_URL_ENV),
                                   warehouse_path=EnvVar(WAREHOUSE_PATH_ENV))
