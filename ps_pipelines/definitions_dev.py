"""The code location of ``ps-pipelines dev``: the local graph on the sandbox and warehouse that
this command started, named by ``PS_SANDBOX_URL`` and ``PS_WAREHOUSE_PATH``.

Both are read through ``EnvVar`` when a run or a sensor tick starts, never at import: two
``dev`` instances on other ports and homes each post to their own sandbox and warehouse.
Plain ``dagster dev -w workspace.yaml`` loads ``ps_pipelines.definitions`` instead (the
sandbox on its default port, the warehouse under ``.ps_pipelines/``).
"""

from dagster import Definitions, EnvVar, definitions

from ps_pipelines.definitions import build_definitions
from ps_pipelines.resources import SANDBOX_URL_ENV, WAREHOUSE_PATH_ENV


@definitions
def defs() -> Definitions:
    return build_definitions("local", sandbox_url=EnvVar(SANDBOX_URL_ENV), warehouse_path=EnvVar(WAREHOUSE_PATH_ENV))
