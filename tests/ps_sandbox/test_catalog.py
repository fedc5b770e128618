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
# is a contract field no real tenant would send. Empty: every field the pipeline reads (or
# knowingly ignores) is documented, folded-in related objects included.
KNOWN_UNDOCUMENTED: dict[str, set[str]] = {contract.key: set() for contract in
                                           (*kantata_contracts.ALL, *workday_contracts.ALL)}


def _nested_fields(contract: EntityContract, *, documented_only: bool) -> set[str]:
    """Flattened names of the related objects a Kantata contract folds into its records
    (``contracts.kantata.NESTED``), each under its prefix, an include of an include too."""
    names: set[str] = set()

    def walk(nests: tuple[kantata_contracts.Nested, ...], prefix: str) -> None:
        for nest in nests:
            related = kantata_catalog.OBJECTS[nest.collection]
            name = f"{prefix}_{nest.name}" if prefix else nest.name
            names.add(name)
            if not nest.many:  # a list stays one column; its elements are not columns
                names.update(kantata_catalog.flattened(related, documented_only=documented_only, prefix=name))
                walk(nest.then, name)

    walk(kantata_contracts.NESTED.get(contract.entity, ()), "")
    return names


def _catalogue_fields(contract: EntityContract, *, documented_only: bool) -> set[str]:
    if contract.platform == "kantata":
        obj = kantata_catalog.OBJECTS[contract.source_object]
        return kantata_catalog.flattened(obj, documented_only=documented_only) | _nested_fields(
            contract, documented_only=documented_only)
    if contract.source_object == "workers":
        return workday_catalog.worker_flattened(documented_only=documented_only)
    return workday_catalog.report_flattened(contract.source_object)


def _contract_fields(contract: EntityContract) -> set[str]:
    """Columns and ignored fields; an ignored ``prefix_*`` must name a folded-in object."""
    fields = set(contract.columns)
    for name in contract.ignored_fields:
        if name.endswith("*"):
            nested = {nest.name for nest in kantata_contracts.NESTED.get(contract.entity, ())}
            assert name[:-2] in nested, f"{contract.key}: {name} names no folded-in object"
        else:
            fields.add(name)
    return fields


def undocumented_fields(contract: EntityContract) -> set[str]:
    """The contract's columns (and ignored fields) the vendor's catalogue does not document."""
    return _contract_fields(contract) - _catalogue_fields(contract, documented_only=True)


CONTRACTS = (*kantata_contracts.ALL, *workday_contracts.ALL)





@pytest.mark.parametrize("contract", CONTRACTS, ids=lambda contract: contract.key)
def test_every_contract_field_is_in_the_emulators_catalogue(contract: EntityContract) -> None:
    """What the pipeline reads (or knowingly ignores) is something the emulator can serve."""
    assert _contract_fields(contract) - _catalogue_fields(contract, documented_only=False) == set()


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


def test_the_catalogues_serve_nothing_no_vendor_document_provides() -> None:
    """The flagged extensions are gone: the opportunity link is an external reference, approval comes
    from submissions, completion from story state changes, rates from rate card sets/versions/roles,
    and Workday's cost center, FTE and region from the job history report and the location."""
    assert {name: dict(obj.extensions) for name, obj in kantata_catalog.OBJECTS.items() if obj.extensions} == {}
    assert workday_catalog.WORKER_EXTENSIONS == {}
    assert "salesforce_opportunity_id" not in kantata_catalog.WORKSPACES.served()
