"""The write-back postings of the estate in ``PS_ESTATE``, built when the definitions load.

Their target systems (and so their resources) are the estate's: invoices go to its ERP(s),
activations to its ERP(s), CRM and PSA; so they are built from the estate, like the dbt models
(``defs/transform/definitions.py``), not at import.
"""

from dagster import Definitions, definitions

from ps_pipelines.defs.writeback.assets import build_activation_posting, build_billing_posting
from ps_pipelines.estate import Estate


@definitions
def activation_definitions() -> Definitions:
    # build_definitions(estate=...) sets PS_ESTATE while it loads this folder.
    estate = Estate.from_env()
    posting, duplicates_check = build_activation_posting(estate)
    invoices, reconciliation_check = build_billing_posting(estate)
    return Definitions(assets=[posting, invoices], asset_checks=[duplicates_check, reconciliation_check])
