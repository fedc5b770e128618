"""The Kantata and Workday emulations come from the vendors' catalogues, and our contracts are
checked against those catalogues: a contract field the vendor does not document fails here.

Vendor documents behind the catalogues: Kantata's API specification (mavenlink_gem
``lib/config/specification.yml``, developer.mavenlink.com) and Workday's Worker resource and
RaaS ``Report_Entry`` format (see ``ps_sandbox/catalog/*.py``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from ps_pipelines.lib.contracts import columns as c
from ps_pipelines.lib.contracts import kantata as kantata_contracts
from ps_pipelines.lib.contracts import workday as workday_contracts
from ps_pipelines.lib.contracts.base import EntityContract
from ps_pipelines.lib.contracts.validate import validate_records
from ps_pipelines.lib.sources import KantataClient
from ps_sandbox.catalog import kantata as kantata_catalog
from ps_sandbox.catalog import workday as workday_catalog
from ps_sandbox.context import DEFAULT_CREDENTIALS
from tests.conftest import RunningSandbox

SANDBOX = Path(__file__).resolve().parents[2] / "ps_sandbox"

# The contract fields Kantata/Workday do not document, which the sandbox still serves as flagged
# extensions (each with its reason in the catalogue). The list may only shrink: a new name here
# is a contract field no real tenant would send.
KNOWN_UNDOCUMENTED = {
    "kantata__projects": {"salesforce_opportunity_id"},
    "kantata__time_entries": {"status", "approved_at"},
    "kantata__expenses": {"status", "approved_at"},
    "kantata__milestones": {"completed_at"},
    "kantata__users": {"created_at", "updated_at"},
    "kantata__rate_cards": {"title", "region", "effective_from", "effective_to", "rates", "created_at",
                            "updated_at"},
    "workday__workers": {"region", "costcenter_id", "costcenter_descriptor", "fte"},
    "workday__cost_rates": set(),
    "workday__job_history": set(),
}


def _catalogue_fields(contract: EntityContract, *, documented_only: bool) -> set[str]:
    if contract.platform == "kantata":
        obj = kantata_catalog.OBJECTS[contract.source_object]
        return kantata_catalog.flattened(obj, documented_only=documented_only)
    if contract.source_object == "workers":
        return workday_catalog.worker_flattened(documented_only=documented_only)
    return workday_catalog.report_flattened(contract.source_object)


def undocumented_fields(contract: EntityContract) -> set[str]:
    """The contract's columns (and ignored fields) the vendor's catalogue does not document."""
    fields = set(contract.columns) | set(contract.ignored_fields)
    return fields - _catalogue_fields(contract, documented_only=True)


CONTRACTS = (*kantata_contracts.ALL, *workday_contracts.ALL)





@pytest.mark.parametrize("contract", CONTRACTS, ids=lambda contract: contract.key)
def test_every_contract_field_is_in_the_emulators_catalogue(contract: EntityContract) -> None:
    """What the pipeline reads (or knowingly ignores) is something the emulator can serve."""
    fields = set(contract.columns) | set(contract.ignored_fields)
    assert fields - _catalogue_fields(contract, documented_only=False) == set()


@pytest.mark.parametrize("contract", CONTRACTS, ids=lambda contract: contract.key)
def test_contract_fields_the_vendor_does_not_document_are_only_the_known_gaps(contract: EntityContract) -> None:
    assert undocumented_fields(contract) == KNOWN_UNDOCUMENTED[contract.key]


def _renamed(contract: EntityContract, old: str, new: str) -> EntityContract:
    columns = {new if name == old else name: column for name, column in contract.schema.columns.items()}
    return dataclasses.replace(contract, schema=c.schema(f"{contract.key}_renamed", columns))


def test_a_misnamed_contract_field_fails_the_catalogue_check() -> None:
    """A contract copy asking for ``performed_on`` (Kantata says ``date_performed``) is caught."""
    wrong = _renamed(kantata_contracts.TIME_ENTRIES, "date_performed", "performed_on")
    assert undocumented_fields(wrong) == KNOWN_UNDOCUMENTED["kantata__time_entries"] | {"performed_on"}


def test_a_misnamed_contract_field_goes_missing_in_ingestion(sandbox: RunningSandbox) -> None:
    """Against the emulator, the misnamed required field is missing from every record, so every row
    is rejected naming it, as a real tenant's answer would be; the real field shows up as drift."""
    wrong = _renamed(kantata_contracts.TIME_ENTRIES, "date_performed", "performed_on")
    client = KantataClient(sandbox.url, DEFAULT_CREDENTIALS["kantata"]["token"], per_page=50)
    page = next(iter(client.extract(wrong, since=None)))
    batch = validate_records(wrong, page)
    assert len(batch.rejects) == len(page) > 0
    assert all(any(rule.startswith("performed_on") for rule in reject.rules) for reject in batch.rejects)
    assert "date_performed" in batch.unexpected_columns
    # The right contract loads the same page cleanly and sees no drift.
    right = validate_records(kantata_contracts.TIME_ENTRIES, page)
    assert len(right.valid_records) == len(page) - len(right.rejects) and not right.unexpected_columns
