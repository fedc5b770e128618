"""Dynamics 365 in the canonical model (issue 14): an estate whose ERP is Dynamics 365 builds the
same marts from it as a NetSuite estate does from NetSuite.

The sandbox's Dynamics 365 records are the firm's NetSuite records re-keyed
(ps_sandbox/d365_data.py), served over real HTTP; the D365 estate's real ingestion assets load
them and the whole dbt project is built for that estate. The marts are then checked against the
raw D365 tables: customers and projects linked to their CRM records by the firm's extension
fields, invoice line amounts (as ``decimal.Decimal``) and the legal entities.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
from dagster import materialize

from ps_pipelines.estate import Estate
from ps_pipelines.ingest.catalog import estate_ingest_assets
from ps_pipelines.resources import build_resources, estate_resources
from ps_sandbox.app import open_sandbox, start_server
from ps_sandbox.context import SandboxConfig
from tests.conftest import TEST_SCALE, TEST_SEED
from tests.transform.test_dbt_foundation import dbt_or_fail

ESTATE = "salesforce,kantata,workday,d365"
CENT = Decimal("0.01")


@pytest.fixture(scope="module")
def warehouse(sandbox_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[duckdb.DuckDBPyConnection]:
    """The D365 estate ingested from the sandbox, then the dbt project built for it."""
    work = tmp_path_factory.mktemp("d365-conform")
    state = work / "sandbox.sqlite"
    shutil.copyfile(sandbox_template, state)
    server = start_server(open_sandbox(state, SandboxConfig(seed=TEST_SEED, scale=TEST_SCALE)), port=0)
    url = f"http://127.0.0.1:{server.server_port}"
    path = work / "warehouse.duckdb"
    estate = Estate.parse(ESTATE)
    try:
        resources = {**build_resources("local", sandbox_url=url, warehouse_path=str(path)),
                     **estate_resources(estate, sandbox_url=url)}
        assert materialize(estate_ingest_assets(estate), resources=resources, raise_on_error=True).success
    finally:
        server.shutdown()
    results = dbt_or_fail(["build", "--vars", json.dumps({"estate": ESTATE})], path, work)
    assert {r["status"] for r in results["results"]} <= {"success", "pass"}
    con = duckdb.connect(str(path), read_only=True)
    try:
        yield con
    finally:
        con.close()


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> set[tuple[Any, ...]]:
    return {tuple(row) for row in con.execute(sql).fetchall()}


def _money(value: Any) -> Decimal:
    """A raw amount (a JSON number, stored as a double) as the decimal it stands for."""
    return Decimal(repr(value)).quantize(CENT)


def test_d365_customers_link_to_their_crm_accounts(warehouse: duckdb.DuckDBPyConnection) -> None:
    """Every D365 customer whose PsCrmAccountId names a CRM account is that account's customer."""
    linked = _rows(warehouse, """
        SELECT c.customeraccount, c.pscrmaccountid
        FROM raw_d365.customers AS c
        JOIN raw_salesforce.accounts AS a ON a.id = c.pscrmaccountid""")
    assert linked, "no D365 customer carries a CRM account id"
    in_mart = _rows(warehouse, """
        SELECT i.source_record_id, d.crm_account_id
        FROM intermediate.int_customer_identity AS i
        JOIN marts.dim_customer AS d ON d.customer_key = i.customer_key
        WHERE i.source_system = 'd365' AND i.match_method = 'external_id'""")
    assert in_mart == linked
    # The primary ones are the customers' ERP records.
    assert _rows(warehouse, """
        SELECT erp_customer_id, crm_account_id FROM marts.dim_customer WHERE erp_platform = 'd365'""") <= linked


def test_d365_projects_link_to_their_crm_opportunities(warehouse: duckdb.DuckDBPyConnection) -> None:
    """Every D365 project whose PsCrmOpportunityId is a workspace's opportunity is that project."""
    linked = _rows(warehouse, """
        SELECT DISTINCT p.projectid, p.pscrmopportunityid
        FROM raw_d365.projects AS p
        JOIN intermediate.int_psa_projects AS w ON w.opportunity_id = p.pscrmopportunityid""")
    assert linked, "no D365 project carries a CRM opportunity id that a workspace shares"
    in_mart = _rows(warehouse, """
        SELECT i.source_record_id, d.crm_opportunity_id
        FROM intermediate.int_project_identity AS i
        JOIN marts.dim_project AS d ON d.project_key = i.project_key
        WHERE i.source_system = 'd365' AND i.match_method = 'opportunity_id' AND d.has_psa_project""")
    assert in_mart == linked
    # A linked project's customer is the customer of its opportunity's account, the D365 customer.
    mismatched = warehouse.execute("""
        SELECT count(*) FROM marts.dim_project AS p
        JOIN raw_d365.projects AS r ON r.projectid = p.erp_project_id
        JOIN marts.dim_customer AS c ON c.customer_key = p.customer_key
        WHERE p.erp_platform = 'd365' AND c.erp_customer_id IS DISTINCT FROM r.customeraccount""").fetchone()[0]
    assert mismatched == 0


def test_invoice_lines_sum_to_the_d365_journal(warehouse: duckdb.DuckDBPyConnection) -> None:
    raw: dict[str, Decimal] = {}
    for company, number, amount in warehouse.execute("""
            SELECT dataareaid, invoicenumber, lineamount FROM raw_d365.invoice_lines
            WHERE NOT coalesce(_is_deleted, false)""").fetchall():
        key = f"{company}|{number}"
        raw[key] = raw.get(key, Decimal(0)) + _money(amount)
    assert raw, "no posted D365 invoice lines"
    fact: dict[str, Decimal] = {}
    for invoice_id, amount in warehouse.execute("""
            SELECT invoice_id, amount FROM marts.fct_invoice_lines
            WHERE erp_platform = 'd365' AND NOT is_deleted""").fetchall():
        assert isinstance(amount, Decimal)
        fact[invoice_id] = fact.get(invoice_id, Decimal(0)) + amount
    assert fact == raw
    assert sum(fact.values()) == sum(raw.values())
    # Lines are tied to their project and customer, and the firm's keys travel from the free-text
    # invoice: ExternalInvoiceId on the invoice, InvoiceText on the line.
    unresolved = warehouse.execute("""
        SELECT count(*) FILTER (WHERE project_key IS NULL), count(*) FILTER (WHERE customer_key IS NULL),
               count(*) FILTER (WHERE amount_reporting IS NULL)
        FROM marts.fct_invoice_lines WHERE erp_platform = 'd365'""").fetchone()
    assert unresolved == (0, 0, 0)
    keyed_raw = _rows(warehouse, """
        SELECT h.dataareaid || '|' || h.invoiceid, l.invoicetext
        FROM raw_d365.free_text_invoice_lines AS l
        JOIN raw_d365.free_text_invoices AS h
          ON h.dataareaid = l.dataareaid AND h.invoiceidentifier = l.parentrecid
        WHERE h.isposted = 'Yes' AND coalesce(l.invoicetext, '') <> ''""")
    assert keyed_raw, "no free-text invoice line carries the firm's line key"
    assert _rows(warehouse, """
        SELECT invoice_id, line_key FROM marts.fct_invoice_lines
        WHERE erp_platform = 'd365' AND line_key IS NOT NULL""") == keyed_raw


def test_legal_entities_are_the_d365_companies(warehouse: duckdb.DuckDBPyConnection) -> None:
    raw = _rows(warehouse, """
        SELECT lower(e.legalentityid), e.name, upper(l.accountingcurrency)
        FROM raw_d365.legal_entities AS e
        JOIN raw_d365.ledgers AS l ON l.legalentityid = e.legalentityid
        WHERE NOT coalesce(e._is_deleted, false)""")
    assert len(raw) > 1
    assert _rows(warehouse, """
        SELECT erp_subsidiary_id, legal_entity_name, functional_currency_code FROM marts.dim_legal_entity""") == raw
    # Customers and projects sit in the legal entity of their company (dataAreaId).
    misplaced = warehouse.execute("""
        SELECT count(*) FROM marts.dim_customer AS c
        JOIN raw_d365.customers AS r ON r.customeraccount = c.erp_customer_id
        JOIN marts.dim_legal_entity AS le ON le.legal_entity_key = c.legal_entity_key
        WHERE c.erp_platform = 'd365' AND le.erp_subsidiary_id <> lower(r.dataareaid)""").fetchone()[0]
    assert misplaced == 0
