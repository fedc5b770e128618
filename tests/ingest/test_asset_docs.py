"""What the UI says of each raw asset: the warehouse's column types, each field's meaning, the
source and incremental key, and a freshness policy from the entity's change rate."""

from __future__ import annotations

import duckdb
import pytest
from dagster import AssetsDefinition

from ps_pipelines.defs.certinia.assets import build_certinia_assets
from ps_pipelines.defs.d365.assets import build_d365_assets
from ps_pipelines.defs.hubspot.assets import build_hubspot_assets
from ps_pipelines.ingest.catalog import ingest_assets
from ps_pipelines.ingest.factory import raw_asset_key
from ps_pipelines.ingest.freshness import CHANGE_RATES
from ps_pipelines.lib.contracts import EVERY_CONTRACT, EntityContract
from ps_pipelines.lib.warehouse.warehouse import ensure_raw_table

# The default graph's assets and those of the sources an estate declares (HubSpot, Certinia, D365).
ASSETS = {asset.key: asset for asset in [*ingest_assets, *build_hubspot_assets(), *build_certinia_assets(),
                                         *build_d365_assets()]}
DESCRIBED = EVERY_CONTRACT


def spec_of(contract: EntityContract):
    asset: AssetsDefinition = ASSETS[raw_asset_key(contract)]
    return next(iter(asset.specs))


@pytest.mark.parametrize("contract", EVERY_CONTRACT, ids=lambda c: c.key)
def test_column_types_are_those_the_warehouse_creates(contract: EntityContract) -> None:
    with duckdb.connect() as con:
        ensure_raw_table(con, contract)
        schema, table = contract.raw_table.split(".")
        created = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                                   "WHERE table_schema = ? AND table_name = ?", [schema, table]).fetchall())
        columns = spec_of(contract).metadata["dagster/column_schema"].columns
        # information_schema spells types out (TIMESTAMPTZ is TIMESTAMP WITH TIME ZONE)
        shown = {c.name: con.execute(f"SELECT typeof(CAST(NULL AS {c.type}))").fetchone()[0] for c in columns}
    assert shown == {name: created[name] for name in contract.columns}
    assert {c.name: c.constraints.nullable for c in columns} == {
        name: col.nullable for name, col in contract.schema.columns.items()}


@pytest.mark.parametrize("contract", DESCRIBED, ids=lambda c: c.key)
def test_every_field_says_what_it_means_and_its_role(contract: EntityContract) -> None:
    assert contract.undescribed_columns() == []
    columns = {c.name: c for c in spec_of(contract).metadata["dagster/column_schema"].columns}
    for name, column in columns.items():
        meaning = contract.schema.columns[name].description
        assert column.description.startswith(meaning), name
        assert column.description.endswith("Nullable." if column.constraints.nullable else "Required."), name
    for key in contract.id_columns:
        assert "primary key" in columns[key].description.lower()
    if contract.change_column:
        assert "High-water mark" in columns[contract.change_column].description
    if contract.parent_key_column:
        assert f"parent {contract.parent_entity}" in columns[contract.parent_key_column].description


@pytest.mark.parametrize("contract", EVERY_CONTRACT, ids=lambda c: c.key)
def test_asset_description_names_the_entity_its_source_and_incremental_key(contract: EntityContract) -> None:
    description = spec_of(contract).description
    assert description.startswith(contract.description)
    source = next(line for line in description.splitlines() if line.startswith("- Source: "))
    assert contract.source_object in source
    if contract.change_column:
        assert f"Incremental key: `{contract.change_column}`" in description
    elif contract.parent_entity:
        assert f"the {contract.parent_entity} rows that changed" in description
    else:
        assert "full snapshot" in description


def test_every_raw_asset_has_the_freshness_policy_of_its_change_rate() -> None:
    assert set(CHANGE_RATES) == {c.key for c in EVERY_CONTRACT}  # no entity left out, none stale
    for contract in EVERY_CONTRACT:
        policy = spec_of(contract).freshness_policy
        rate = CHANGE_RATES[contract.key]
        assert policy is not None, contract.key
        assert (policy.fail_window.to_timedelta(), policy.warn_window.to_timedelta()) == (
            rate.fail_window, rate.warn_window), contract.key
    # Work that is billed as it is logged is watched hourly; configuration is not.
    assert CHANGE_RATES["kantata__time_entries"].fail_window < CHANGE_RATES["workday__workers"].fail_window
    assert CHANGE_RATES["netsuite__invoices"].fail_window < CHANGE_RATES["netsuite__currencies"].fail_window
    assert CHANGE_RATES["certinia__timecards"] == CHANGE_RATES["kantata__time_entries"]
