"""Project activation payloads, built from ``outbound.erp_project_activation_requests``.

A won deal becomes up to four ledger rows, posted in this order (each depends on the ones
before it, so a failed step holds back the deal's later steps):

1. ``netsuite:customer:<SF Account Id>``  customer upsert by external id (if the ERP lacks it);
2. ``netsuite:job:<SF Opportunity Id>``   project upsert, ``parent`` = the customer's internal id;
   (steps 1 and 2 go to the row's ``erp_platform`` through its ERP adapter, ``erp.ERP_ADAPTERS``:
   on Dynamics 365 ``d365:customer:<account id>`` and ``d365:project:<opportunity id>``);
3. ``kantata:workspace:<SF Opportunity Id>`` workspace create (if the PSA lacks it), with its
   external reference to the opportunity (``contracts.kantata.OPPORTUNITY_REFERENCE``);
4. ``salesforce:opportunity:<SF Opportunity Id>`` ``ERP_Project_Id__c`` + ``Activation_Status__c``.

A deal failing its contract sends only step 4, with ``Activation_Status__c`` = ``Needs
attention: <rules>`` so sales ops sees the problem in the CRM; its other steps wait in the
ledger as ``invalid`` and are sent once the fixed data arrives.

Steps 3 and 4 go to the deal's own PSA and CRM, named by the request row's ``psa_platform`` and
``crm_platform`` (salesforce/kantata when the outbound model predates them, so the default
estate's keys and payloads never change). Each platform is an adapter (``PSA_TARGETS``,
``CRM_TARGETS``) of the same steps:

- Certinia: ``certinia:project:<deal id>``, a ``pse__Proj__c`` upserted by the deal id in its
  external-id field (``contracts.certinia.DEAL_ID_FIELD``), so a create whose answer was lost
  is found, not repeated, by the retry; linked to the opportunity and account when the CRM is
  Salesforce (the package's own lookups);
- HubSpot: ``hubspot:deal:<deal id>``, the deal's ``ps_external_id`` (ERP project id) and
  ``ps_activation_status`` properties.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import duckdb
import pandas as pd

from ps_pipelines.estate import Estate
from ps_pipelines.lib.contracts.kantata import OPPORTUNITY_REFERENCE
from ps_pipelines.lib.writeback.contracts import check_activation_requests, rule_names
from ps_pipelines.lib.writeback.erp import DEFAULT_ERP, ERP_ADAPTERS, ErpAdapter
from ps_pipelines.lib.writeback.outbox import OutboxItem, outbox_key, ref
from ps_pipelines.lib.writeback.payloads import ACTIVATION_TABLE, optional_column

ACTIVATION_FLOW = "project_activation"
STATUS_COMPLETE = "Complete"
NEEDS_ATTENTION = "Needs attention: "
STATUS_MAX_LENGTH = 255  # a Salesforce text field
DEFAULT_CRM, DEFAULT_PSA = "salesforce", "kantata"
CERTINIA_NAME_MAX = 80  # pse__Proj__c Name is a text(80)

_ACTIVATION_SELECT = """
    SELECT opportunity_id, customer_external_id, company_name, project_name, erp_subsidiary_id, legal_entity_name,
           currency_code, erp_currency_id, billing_model, tax_code, CAST(start_date AS VARCHAR) AS start_date,
           CAST(end_date AS VARCHAR) AS end_date, existing_erp_customer_id, existing_erp_project_id,
           existing_psa_project_id, crm_activation_status, needs_erp_customer, needs_erp_project,
           needs_psa_workspace, needs_crm_update, validation_errors, {validation_detail} AS validation_detail,
           coalesce({crm_platform}, '{default_crm}') AS crm_platform,
           coalesce({psa_platform}, '{default_psa}') AS psa_platform,
           coalesce({erp_platform}, '{default_erp}') AS erp_platform
    FROM {table}
    ORDER BY opportunity_id
"""


def read_activation_requests(con: duckdb.DuckDBPyConnection, table: str = ACTIVATION_TABLE) -> pd.DataFrame:
    optional = ("validation_detail", "crm_platform", "psa_platform", "erp_platform")
    columns = {name: optional_column(con, table, name) for name in optional}
    sql = _ACTIVATION_SELECT.format(table=table, default_crm=DEFAULT_CRM, default_psa=DEFAULT_PSA,
                                    default_erp=DEFAULT_ERP, **columns)
    return con.execute(sql).df()


def _text(value: Any) -> str | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return str(value)


@dataclass(frozen=True)
class CrmTarget:
    """Where a CRM keeps a deal's activation: the record and its two fields."""

    system: str
    record_type: str
    project_field: str  # the ERP project id
    status_field: str  # Complete, or Needs attention: <rules>


@dataclass(frozen=True)
class PsaTarget:
    """The PSA record a deal's delivery lives in, and how its payload is built."""

    system: str
    record_type: str
    payload: Callable[[_Deal], dict[str, Any]]


def _adapter(targets: dict[str, Any], row: pd.Series, column: str, default: str) -> Any:
    name = _text(row.get(column)) or default
    if name not in targets:
        raise ValueError(f"{column} {name!r} of opportunity {row['opportunity_id']} has no activation adapter; "
                         f"known: {', '.join(targets)}")
    return targets[name]


class _Deal:
    """One request row, with the ledger keys and payloads of its steps."""

    def __init__(self, row: pd.Series, problems: list[str]) -> None:
        self.row = row
        self.problems = problems
        self.crm: CrmTarget = _adapter(CRM_TARGETS, row, "crm_platform", DEFAULT_CRM)
        self.psa: PsaTarget = _adapter(PSA_TARGETS, row, "psa_platform", DEFAULT_PSA)
        self.erp: ErpAdapter = _adapter(ERP_ADAPTERS, row, "erp_platform", DEFAULT_ERP)
        self.opportunity = str(row["opportunity_id"])
        account = _text(row["customer_external_id"])
        self.customer_key = outbox_key(self.erp.system, self.erp.customer_record, account) if account else None
        self.account = account
        self.job_key = outbox_key(self.erp.system, self.erp.project_record, self.opportunity)

    def known_refs(self) -> dict[str, str]:
        known = {}
        if self.customer_key and _text(self.row["existing_erp_customer_id"]):
            known[self.customer_key] = _text(self.row["existing_erp_customer_id"])
        if _text(self.row["existing_erp_project_id"]):
            known[self.job_key] = _text(self.row["existing_erp_project_id"])
        return known

    def workspace(self) -> dict[str, Any]:
        # The opportunity link is an external reference written with the workspace, in the same
        # create: the workspace never exists without it, so a retried create can find it.
        return {"title": _text(self.row["project_name"]), "currency": _text(self.row["currency_code"]),
                "start_date": _text(self.row["start_date"]), "due_date": _text(self.row["end_date"]),
                "external_reference": OPPORTUNITY_REFERENCE.for_opportunity(self.opportunity)}

    def certinia_project(self) -> dict[str, Any]:
        # The deal id travels in the upsert's URL (DEAL_ID_FIELD); the package's own lookups
        # name the opportunity and account only when they are records of the same org.
        name = _text(self.row["project_name"])
        project = {"Name": name[:CERTINIA_NAME_MAX] if name else None,
                   "CurrencyIsoCode": _text(self.row["currency_code"]),
                   "pse__Start_Date__c": _text(self.row["start_date"]), "pse__End_Date__c": _text(self.row["end_date"]),
                   "pse__Is_Active__c": True}
        if self.crm.system == "salesforce":
            project.update(pse__Opportunity__c=self.opportunity, pse__Account__c=self.account)
        return project

    def crm_update(self) -> dict[str, Any]:
        if self.problems:
            status = NEEDS_ATTENTION + ", ".join(rule_names(self.problems))
            return {self.crm.status_field: status[:STATUS_MAX_LENGTH]}
        return {self.crm.project_field: ref(self.job_key), self.crm.status_field: STATUS_COMPLETE}

    def steps(self) -> list[OutboxItem]:
        wanted: list[tuple[str, str, str, dict[str, Any], list[str]]] = []
        erp = self.erp
        if bool(self.row["needs_erp_customer"]) and self.account:
            wanted.append((erp.system, erp.customer_record, self.account, erp.customer_payload(self), []))
        if bool(self.row["needs_erp_project"]):
            wanted.append((erp.system, erp.project_record, self.opportunity, erp.project_payload(self),
                           [self.customer_key] if self.customer_key else []))
        if bool(self.row["needs_psa_workspace"]):
            wanted.append((self.psa.system, self.psa.record_type, self.opportunity, self.psa.payload(self), []))
        items, before = [], []
        for system, record, external_id, payload, refs in wanted:
            item = OutboxItem(flow=ACTIVATION_FLOW, target_system=system, record_type=record,
                              external_id=external_id, payload=payload, errors=list(self.problems),
                              depends_on=_unique([*before, *refs]), known_refs=self.known_refs())
            items.append(item)
            before.append(item.key)
        # The CRM hears about a problem at once; otherwise it is told last, once the ERP project exists.
        crm_refs = [] if self.problems else _unique([*before, self.job_key])
        items.append(OutboxItem(flow=ACTIVATION_FLOW, target_system=self.crm.system, record_type=self.crm.record_type,
                                external_id=self.opportunity, payload=self.crm_update(), depends_on=crm_refs,
                                known_refs=self.known_refs()))
        return items


CRM_TARGETS: dict[str, CrmTarget] = {
    "salesforce": CrmTarget("salesforce", "opportunity", "ERP_Project_Id__c", "Activation_Status__c"),
    # The firm's custom deal properties (ps_sandbox.catalog.hubspot [TENANT]); ps_external_id is
    # what stg_hubspot__deals reads as the deal's ERP project id.
    "hubspot": CrmTarget("hubspot", "deal", "ps_external_id", "ps_activation_status"),
}


def activation_systems(estate: Estate) -> tuple[str, ...]:
    """The activation's target systems in ``estate``: its ERP(s), PSA(s) and CRM(s). Each is a
    resource key and a ``Targets`` field; a row's own ``erp_platform``/``psa_platform``/
    ``crm_platform`` picks among them, so a firm mid-migration (two PSAs) posts to both."""
    return (*estate.for_role("erp"), *estate.for_role("psa"), *estate.for_role("crm"))


PSA_TARGETS: dict[str, PsaTarget] = {
    "kantata": PsaTarget("kantata", "workspace", _Deal.workspace),
    "certinia": PsaTarget("certinia", "project", _Deal.certinia_project),
}


def _unique(keys: list[str]) -> list[str]:
    return list(dict.fromkeys(keys))


def activation_items(requests: pd.DataFrame) -> list[OutboxItem]:
    """The ledger items of every deal in ``requests`` (see the module docstring).

    Two deals of one account share its customer row; a valid deal's version of it wins, so
    an incomplete sibling deal cannot hold back the customer.
    """
    problems = check_activation_requests(requests) if not requests.empty else {}
    by_key: dict[str, OutboxItem] = {}
    for _, row in requests.iterrows():
        deal = _Deal(row, problems.get(str(row["opportunity_id"]), []))
        for item in deal.steps():
            current = by_key.get(item.key)
            if current is None or (current.errors and not item.errors):
                by_key[item.key] = item
    return list(by_key.values())
