"""The project-activation posting of the estate in ``PS_ESTATE``, built when the definitions load.

Its target systems (and so its resources) are the estate's CRM and PSA, so it is built from the
estate, like the dbt models (``defs/transform/definitions.py``), not at import.
"""

from dagster import Definitions, definitions

from ps_pipelines.defs.writeback.assets import build_activation_posting
from ps_pipelines.estate import Estate


@definitions
def activation_definitions() -> Definitions:
    # build_definitions(estate=...) sets PS_ESTATE while it loads this folder.
    posting, duplicates_check = build_activation_posting(Estate.from_env())
    return Definitions(assets=[posting], asset_checks=[duplicates_check])
