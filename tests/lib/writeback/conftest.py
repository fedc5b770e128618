"""Fixtures of the write-back tests: target clients on the sandbox, a warehouse, hand-made
outbound rows that reference real sandbox records, and readers of what the targets hold."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest

from ps_pipelines.lib.contracts.certinia import DEAL_ID_FIELD
from ps_pipelines.lib.contracts.kantata import PROJECTS
from ps_pipelines.lib.sources import KantataClient, NetSuiteClient, SalesforceClient
from ps_pipelines.lib.sources.d365 import D365Client
from ps_pipelines.lib.sources.hubspot import HubSpotClient
from ps_pipelines.lib.warehouse.warehouse import Warehouse
from ps_pipelines.lib.writeback import PostSettings, Targets
from ps_pipelines.lib.writeback.activation import STATUS_COMPLETE
from ps_pipelines.lib.writeback.contracts import exact_decimal, round_money
from ps_pipelines.lib.writeback.payloads import BILLING_COLUMNS
from ps_sandbox.context import DEFAULT_CREDENTIALS
from ps_sandbox.d365_data import billable_projects
from tests.conftest import RunningSandbox

# Retries cost no wall time: backoff delays are recorded instead of slept.
FAST_RETRIES = {"max_retries": 3, "backoff_base": 0.01, "backoff_max": 0.01}
# Failed rows are due again at once, so "the next run" can be the next call.
NO_BACKOFF = PostSettings(retry_backoff_seconds=0.0)


def make_targets(url: str, *, overrides: Mapping[str, Mapping[str, Any]] | None = None,
                 **client_kw: Any) -> Targets:
    """Clients of the sandbox at ``url``; ``overrides`` replaces options of one system's client
    (e.g. ``{"kantata": {"read_timeout": 7.0}}``), ``client_kw`` those of every client."""
    options = {**FAST_RETRIES, "sleep": lambda _: None, **client_kw}

    def of(system: str) -> dict[str, Any]:
        return {**options, **(overrides or {}).get(system, {})}

    salesforce = (DEFAULT_CREDENTIALS["salesforce"]["client_id"], DEFAULT_CREDENTIALS["salesforce"]["client_secret"])
    d365 = DEFAULT_CREDENTIALS["d365"]
    return Targets(
        netsuite=NetSuiteClient(url, **DEFAULT_CREDENTIALS["netsuite"], **of("netsuite")),
        # The sandbox is both the Dynamics 365 environment and Microsoft Entra ID.
        d365=D365Client(url, d365["tenant"], d365["client_id"], d365["client_secret"], login_url=url, **of("d365")),
        kantata=KantataClient(url, DEFAULT_CREDENTIALS["kantata"]["token"], **of("kantata")),
        salesforce=SalesforceClient(url, *salesforce, **of("salesforce")),
        hubspot=HubSpotClient(url, DEFAULT_CREDENTIALS["hubspot"]["token"], **of("hubspot")),
        # The sandbox's one org runs Certinia when started with it (the certinia_sandbox fixture).
        certinia=SalesforceClient(url, *salesforce, **of("certinia")),
    )


def close_targets(targets: Targets) -> None:
    for client in (targets.netsuite, targets.d365, targets.kantata, targets.salesforce, targets.hubspot,
                   targets.certinia):
        if client is not None:
            client.client.close()


@pytest.fixture
def targets(sandbox: RunningSandbox) -> Iterator[Targets]:
    built = make_targets(sandbox.url)
    yield built
    close_targets(built)


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    return Warehouse(tmp_path / "warehouse.duckdb")


@pytest.fixture
def con(warehouse: Warehouse) -> Iterator[duckdb.DuckDBPyConnection]:
    with warehouse.connect() as connection:
        yield connection


# -- hand-made outbound rows --------------------------------------------------------------------
@dataclass(frozen=True)
class NsProject:
    """A NetSuite job of the sandbox with its customer, subsidiary and currency."""

    job_id: str
    customer_id: str
    subsidiary_id: str
    currency_id: str
    currency_code: str


def ns_projects(sandbox: RunningSandbox, count: int = 1) -> list[NsProject]:
    store = sandbox.ctx.store
    codes = {row["id"]: row["symbol"] for row in store.scan("netsuite", "currency")}
    jobs = store.scan("netsuite", "job", order="id", limit=count)
    return [NsProject(job["id"], job["parent"], job["subsidiary"], job["currency"], codes[job["currency"]])
            for job in jobs]


@pytest.fixture
def project(sandbox: RunningSandbox) -> NsProject:
    return ns_projects(sandbox)[0]


def invoice_id(project: NsProject, period: str = "2026-10", workspace: str = "7001") -> str:
    return f"psp:inv:{workspace}:{project.subsidiary_id}:{project.currency_code}:{period}"


def billing_lines(
    project: NsProject,
    amounts: Sequence[tuple[float, float]] = ((8.0, 150.0), (4.5, 200.0)),
    *,
    period: str = "2026-10",
    workspace: str = "7001",
    **overrides: Any,
) -> pd.DataFrame:
    """The lines of one invoice as erp_billing_transactions holds them: ``amounts`` are
    (hours, rate) pairs; ``overrides`` replace whole columns."""
    invoice = invoice_id(project, period, workspace)
    rows = []
    for number, (hours, rate) in enumerate(amounts, start=1):
        rows.append({
            "line_external_id": f"psp:inl:time_entry:{workspace}{period.replace('-', '')}{number:03d}",
            "invoice_external_id": invoice, "line_number": number, "source_type": "time_entry",
            "source_id": f"{workspace}{number}", "psa_project_id": workspace, "crm_opportunity_id": "006TEST",
            "billing_model": "Time and Materials", "billing_period": period,
            "invoice_date": str((pd.Timestamp(f"{period}-01") + pd.offsets.MonthEnd(0)).date()),
            "erp_customer_id": project.customer_id, "erp_project_id": project.job_id,
            "erp_subsidiary_id": project.subsidiary_id, "erp_currency_id": project.currency_id,
            "currency_code": project.currency_code, "item_name": "Professional Services - Consultant",
            "memo": f"Line {number}", "quantity": hours, "unit_rate": rate,
            # Cents as the warehouse rounds (every currency to 2 places there).
            "amount": float(round_money(exact_decimal(hours) * exact_decimal(rate), "USD")),
            "validation_errors": None, "validation_detail": None,
        })
    frame = pd.DataFrame(rows, columns=list(BILLING_COLUMNS))
    frame["invoice_amount"] = frame["amount"].sum()
    for column, value in overrides.items():
        frame[column] = value
    return frame


def won_deal(sandbox: RunningSandbox, **overrides: Any) -> pd.DataFrame:
    """Win the next open deal in the CRM (control API) and describe it as the outbound
    activation model would: everything still to be set up."""
    won = sandbox.control("POST", "events/deal-won", json={})
    store = sandbox.ctx.store
    opp = store.get("salesforce", "Opportunity", won["opportunity_id"])
    account = store.get("salesforce", "Account", opp["AccountId"])
    subsidiaries = {row["name"]: row["id"] for row in store.scan("netsuite", "subsidiary")}
    currencies = {row["symbol"]: row["id"] for row in store.scan("netsuite", "currency")}
    row = {
        "opportunity_id": opp["Id"], "customer_external_id": account["Id"], "company_name": account["Name"],
        "project_name": opp["Name"], "erp_subsidiary_id": subsidiaries.get(opp["Legal_Entity__c"]),
        "legal_entity_name": opp["Legal_Entity__c"], "currency_code": opp["CurrencyIsoCode"],
        "erp_currency_id": currencies.get(opp["CurrencyIsoCode"]), "billing_model": opp["Billing_Model__c"],
        "tax_code": opp["Tax_Code__c"], "start_date": opp["CloseDate"], "end_date": None,
        "existing_erp_customer_id": None, "existing_erp_project_id": None, "existing_psa_project_id": None,
        "crm_activation_status": opp["Activation_Status__c"], "needs_erp_customer": True,
        "needs_erp_project": True, "needs_psa_workspace": True, "needs_crm_update": True, "validation_errors": None,
    }
    return pd.DataFrame([{**row, **overrides}])


def won_hubspot_deal(sandbox: RunningSandbox, **overrides: Any) -> pd.DataFrame:
    """Win the next open HubSpot deal and describe it as the outbound activation model would for
    a hubspot + certinia estate: the deal id as the opportunity, its primary company as the
    account, everything still to be set up."""
    won = sandbox.control("POST", "events/hubspot-deal-won", json={})
    store = sandbox.ctx.store
    deal = store.get("hubspot", "deals", won["deal_id"])["properties"]
    [company_id] = store.get("hubspot", "associations", f"deals:{won['deal_id']}:companies")["to"][:1]
    company = store.get("hubspot", "companies", company_id)["properties"]
    currencies = {row["symbol"]: row["id"] for row in store.scan("netsuite", "currency")}
    currency = deal.get("deal_currency_code") or "USD"
    subsidiaries = store.scan("netsuite", "subsidiary", order="id")
    subsidiary = next((s for s in subsidiaries if s["currency"] == currencies.get(currency)), subsidiaries[0])
    row = {
        "opportunity_id": won["deal_id"], "customer_external_id": company_id, "company_name": company["name"],
        "project_name": deal["dealname"], "erp_subsidiary_id": subsidiary["id"],
        "legal_entity_name": subsidiary["name"],
        "currency_code": currency, "erp_currency_id": currencies.get(currency), "billing_model": "Time and Materials",
        "tax_code": "STANDARD", "start_date": deal["closedate"][:10], "end_date": None,
        "existing_erp_customer_id": None, "existing_erp_project_id": None, "existing_psa_project_id": None,
        "crm_activation_status": deal.get("ps_activation_status"), "needs_erp_customer": True,
        "needs_erp_project": True, "needs_psa_workspace": True, "needs_crm_update": True, "validation_errors": None,
        "crm_platform": "hubspot", "psa_platform": "certinia",
    }
    return pd.DataFrame([{**row, **overrides}])


def certinia_projects_of(sandbox: RunningSandbox, deal_id: str) -> list[dict[str, Any]]:
    """The Certinia projects whose deal id field names ``deal_id``."""
    return [project for project in sandbox.ctx.store.scan("salesforce", "pse__Proj__c")
            if project.get(DEAL_ID_FIELD) == deal_id]


def write_outbound(con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame) -> None:
    """Replace ``table`` (e.g. ``outbound.erp_billing_transactions``) with ``frame``."""
    con.execute("CREATE SCHEMA IF NOT EXISTS outbound")
    con.register("_frame", frame.astype({c: "string" for c in frame.columns if frame[c].dtype == object}))
    con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM _frame")
    con.unregister("_frame")


# -- what the targets hold ----------------------------------------------------------------------
def suiteql(targets: Targets, query: str) -> list[dict[str, Any]]:
    return [row for page in targets.netsuite.suiteql(query) for row in page]


def erp_invoices(targets: Targets, external_id: str) -> list[dict[str, Any]]:
    return suiteql(targets, "SELECT id, externalid, foreigntotal, entity FROM transaction "
                            f"WHERE externalid = '{external_id}'")


def erp_lines(targets: Targets, transaction_id: str) -> list[dict[str, Any]]:
    return suiteql(targets, "SELECT id, foreignamount, custcol_ps_line_key FROM transactionline "
                            f"WHERE transaction = {transaction_id} AND mainline = 'F' ORDER BY id")


def d365_projects(sandbox: RunningSandbox, targets: Targets, count: int = 1) -> list[NsProject]:
    """Dynamics 365 projects of the sandbox with their customer, legal entity and currency, in
    the shape of ``NsProject`` (the ids an outbound row of a d365 estate carries)."""
    targets.d365.find("LegalEntities", "LegalEntityId ne ''")  # the first request derives the data
    found = ((p["ProjectID"], c["CustomerAccount"], p["dataAreaId"], c["SalesCurrencyCode"])
             for p, c in billable_projects(sandbox.ctx.store))
    return [NsProject(project, customer, company, code, code)
            for project, customer, company, code in itertools.islice(found, count)]


@dataclass(frozen=True)
class ErpBook:
    """One ERP as the invoice tests see it: its projects, and its invoices read back over HTTP
    (``id``, ``total`` and ``lines``: (line key, amount) pairs, amounts as Decimal)."""

    name: str
    fault_path: str  # what the invoice write's path contains (the fault injection's filter)

    def projects(self, sandbox: RunningSandbox, targets: Targets, count: int = 1) -> list[NsProject]:
        return ns_projects(sandbox, count) if self.name == "netsuite" else d365_projects(sandbox, targets, count)

    def lines(self, project: NsProject, *args: Any, **kwargs: Any) -> pd.DataFrame:
        frame = billing_lines(project, *args, **kwargs)
        if self.name != "netsuite":
            frame["erp_platform"] = self.name
        return frame

    def key(self, project: NsProject, period: str = "2026-10", workspace: str = "7001") -> str:
        return f"{self.name}:invoice:{invoice_id(project, period, workspace)}"

    def invoices(self, targets: Targets, external_id: str) -> list[dict[str, Any]]:
        if self.name == "netsuite":
            return [{"id": str(row["id"]), "total": Decimal(str(row["foreigntotal"])),
                     "lines": [(line["custcol_ps_line_key"], Decimal(str(line["foreignamount"])))
                               for line in erp_lines(targets, row["id"])]}
                    for row in erp_invoices(targets, external_id)]
        found = []
        for header in targets.d365.find("FreeTextInvoiceHeaders", f"ExternalInvoiceId eq '{external_id}'"):
            lines = targets.d365.find("FreeTextInvoiceLines", f"dataAreaId eq '{header['dataAreaId']}' and "
                                                              f"ParentRecId eq {header['InvoiceIdentifier']}")
            amounts = [(line["InvoiceText"], Decimal(str(line["TransactionCurrencyAmount"])))
                       for line in sorted(lines, key=lambda line: line["LineNumber"])]
            found.append({"id": str(header["InvoiceIdentifier"]), "total": sum((a for _, a in amounts), Decimal(0)),
                          "lines": amounts, "posted": header["IsPosted"] == "Yes"})
        return found


ERP_BOOKS = {"netsuite": ErpBook("netsuite", "/record/v1/invoice"), "d365": ErpBook("d365", "/data/$batch")}
# (hours, rate) of an invoice's lines; the third's amount needs rounding (124.9875).
AMOUNTS = ((8.0, 150.0), (4.5, 200.0), (1.25, 99.99))


def expected_amounts(amounts: Sequence[tuple[float, float]] = AMOUNTS) -> list[Decimal]:
    return [(Decimal(str(h)) * Decimal(str(r))).quantize(Decimal("0.01")) for h, r in amounts]


def one_invoice(erp: ErpBook, targets: Targets, external_id: str,
                amounts: Sequence[tuple[float, float]] = AMOUNTS) -> dict[str, Any]:
    """The one invoice of ``external_id`` in ``erp``, its lines' amounts checked as Decimal."""
    [invoice] = erp.invoices(targets, external_id)
    assert [amount for _, amount in invoice["lines"]] == expected_amounts(amounts)
    assert invoice["total"] == sum(expected_amounts(amounts), Decimal(0))
    assert all(key.startswith("psp:inl:") for key, _ in invoice["lines"])
    return invoice


@pytest.fixture(params=sorted(ERP_BOOKS))
def erp(request: pytest.FixtureRequest) -> ErpBook:
    return ERP_BOOKS[request.param]


def set_faults(sandbox: RunningSandbox, platform: str, config: dict[str, Any]) -> None:
    sandbox.control("PUT", f"faults/{platform}", json=config)


def ledger_row(con: duckdb.DuckDBPyConnection, key: str) -> dict[str, Any]:
    frame = con.execute("SELECT * FROM ops.outbox WHERE outbox_key = ?", [key]).df()
    assert len(frame) == 1, f"no ledger row {key}"
    return frame.iloc[0].to_dict()


def attempts_of(con: duckdb.DuckDBPyConnection, key: str) -> list[tuple]:
    return con.execute("""
        SELECT version, attempt, outcome, http_status, finished_at IS NOT NULL FROM ops.outbox_attempts
        WHERE outbox_key = ? ORDER BY version, attempt""", [key]).fetchall()


def ns_records(targets: Targets, table: str, external_id: str) -> list[dict[str, Any]]:
    columns = "id, parent" if table == "job" else "id"
    return suiteql(targets, f"SELECT {columns} FROM {table} WHERE externalid = '{external_id}'")


def workspaces_for(targets: Targets, opportunity_id: str) -> list[dict[str, Any]]:
    """Workspaces whose external reference (folded in by the connector) names ``opportunity_id``."""
    return [w for page in targets.kantata.extract(PROJECTS, since=None) for w in page
            if (w.get("external_reference") or {}).get("service_model_ref") == opportunity_id]


def assert_activated_once(targets: Targets, request: pd.DataFrame) -> None:
    opportunity, account = request.at[0, "opportunity_id"], request.at[0, "customer_external_id"]
    [customer] = ns_records(targets, "customer", account)
    [job] = ns_records(targets, "job", opportunity)
    assert job["parent"] == customer["id"]
    [workspace] = workspaces_for(targets, opportunity)
    assert workspace["title"] == request.at[0, "project_name"]
    crm = targets.salesforce.get("Opportunity", opportunity)
    assert (crm["ERP_Project_Id__c"], crm["Activation_Status__c"]) == (job["id"], STATUS_COMPLETE)
