"""The dbt models and what is published from them, built when the definitions load.

Building them needs the parsed dbt manifest; doing it here rather than at import lets the
package (and ``ps_pipelines.definitions``) be imported on a fresh clone without ``target/``.
"""

from dagster import Definitions, definitions

from ps_pipelines.defs.transform.assets import build_dbt_models, load_manifest
from ps_pipelines.defs.transform.publish import build_publish_assets
from ps_pipelines.estate import Estate
from ps_pipelines.transform.project import estate_project


@definitions
def dbt_definitions() -> Definitions:
    # The estate travels in PS_ESTATE: build_definitions(estate=...) sets it while it loads this folder.
    estate = Estate.from_env()
    manifest = load_manifest(estate_project(estate), estate)
    return Definitions(assets=[*build_dbt_models(manifest, estate), *build_publish_assets(manifest)])
