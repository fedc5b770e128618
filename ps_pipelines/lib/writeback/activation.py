"""Project activation payloads, built from ``outbound.erp_project_activation_requests``.

A won deal becomes up to four ledger rows, posted in this order (each depends on the ones
before it, so a failed step holds back the deal's later steps):

1. ``netsuite:customer:<SF Account Id>``  customer upsert by external id (if the ERP lacks it);
2. ``netsuite:job:<SF Opportunity Id>``   project upsert, ``parent`` = the customer's internal id;
3. ``kantata:workspace:<SF Opportunity Id>`` workspace create (if the PSA lacks it), with its
   external reference to the opportunity (``contracts.kantata.OPPORTUNITY_REFERENCE``);
4. ``salesforce:opportunity:<SF Opportunity Id>`` ``ERP_Project_Id__c`` + ``Activation_Status__c``.

A deal failing its contract sends only step 4, with ``Activation_Status__c`` = ``Needs
attention: <rules>`` so sales ops sees the problem in the CRM; its other steps wait in the
ledger as ``invalid`` and are sent once the fixed data arrives.
"""

from __future__ import annotations

from typing import Any

import duckdb
import pandas as pd

from ps_pipelines.lib.contracts.kantata import OPPORTUNITY_REFERENCE
from ps_pipelines.lib.writeback.contracts import check_activation_requests, rule_names
from ps_pipelines.lib.writeback.outbox import OutboxItem, outbox_key, ref
from ps_pipelines.lib.writeback.payloads import ACTIVATION_TABLE, optional_column

ACTIVATION_FLOW = "project_activation"
STATUS_COMPLETE = "Complete"
NEEDS_ATTENTION = "Needs attention: "
STATUS_MAX_LENGTH = 255  # a Salesforce text field

_ACTIVATION_SELECT = """
    SELECT opportunity_id, customer_external_id, company_name, project_name, ns_subsidiary_id, legal_entity_name,
           currency_code, ns_currency_id, billing_model, tax_code, CAST(start_date AS VARCHAR) AS start_date,
           CAST(end_date AS VARCHAR) AS end_date, existing_ns_customer_id, existing_ns_job_id,
           existing_psa_project_id, crm_activation_status, needs_erp_customer, needs_erp_project,
           needs_psa_workspace, needs_crm_update, validation_errors, {validation_detail} AS validation_detail
    FROM {table}
    ORDER BY opportunity_id
"""


def read_activation_requests(con: duckdb.DuckDBPyConnection, table: str = ACTIVATION_TABLE) -> pd.DataFrame:
    detail = optional_column(con, table, "validation_detail")
    return con.execute(_ACTIVATION_SELECT.format(table=table, validation_detail=detail)).df()


def _text(value: Any) -> str | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return str(value)


def _id_ref(value: Any) -> dict[str, Any] | None:
    text = _text(value)
    return None if text is None else {"id": text}


class _Deal:
    """One request row, with the ledger keys and payloads of its steps."""

    def __init__(self, row: pd.Series, problems: list[str]) -> None:
        self.row = row
        self.problems = problems
        self.opportunity = str(row["opportunity_id"])
        account = _text(row["customer_external_id"])
        self.customer_key = outbox_key("netsuite", "customer", account) if account else None
        self.account = account
        self.job_key = outbox_key("netsuite", "job", self.opportunity)

    def known_refs(self) -> dict[str, str]:
        known = {}
        if self.customer_key and _text(self.row["existing_ns_customer_id"]):
            known[self.customer_key] = _text(self.row["existing_ns_customer_id"])
        if _text(self.row["existing_ns_job_id"]):
            known[self.job_key] = _text(self.row["existing_ns_job_id"])
        return known

    def customer(self) -> dict[str, Any]:
        return {"externalId": self.account, "companyName": _text(self.row["company_name"]),
                "subsidiary": _id_ref(self.row["ns_subsidiary_id"]), "currency": _id_ref(self.row["ns_currency_id"])}

    def job(self) -> dict[str, Any]:
        return {"externalId": self.opportunity, "companyName": _text(self.row["project_name"]),
                "parent": {"id": ref(self.customer_key)} if self.customer_key else None,
                "subsidiary": _id_ref(self.row["ns_subsidiary_id"]), "currency": _id_ref(self.row["ns_currency_id"]),
                "startDate": _text(self.row["start_date"]), "projectedEndDate": _text(self.row["end_date"])}

    def workspace(self) -> dict[str, Any]:
        # The opportunity link is an external reference written with the workspace, in the same
        # create: the workspace never exists without it, so a retried create can find it.
        return {"title": _text(self.row["project_name"]), "currency": _text(self.row["currency_code"]),
                "start_date": _text(self.row["start_date"]), "due_date": _text(self.row["end_date"]),
                "external_reference": OPPORTUNITY_REFERENCE.for_opportunity(self.opportunity)}

    def crm_update(self) -> dict[str, Any]:
        if self.problems:
            status = NEEDS_ATTENTION + ", ".join(rule_names(self.problems))
            return {"Activation_Status__c": status[:STATUS_MAX_LENGTH]}
        return {"ERP_Project_Id__c": ref(self.job_key), "Activation_Status__c": STATUS_COMPLETE}

    def steps(self) -> list[OutboxItem]:
        wanted: list[tuple[str, str, str, dict[str, Any], list[str]]] = []
        if bool(self.row["needs_erp_customer"]) and self.account:
            wanted.append(("netsuite", "customer", self.account, self.customer(), []))
        if bool(self.row["needs_erp_project"]):
            wanted.append(("netsuite", "job", self.opportunity, self.job(),
                           [self.customer_key] if self.customer_key else []))
        if bool(self.row["needs_psa_workspace"]):
            wanted.append(("kantata", "workspace", self.opportunity, self.workspace(), []))
        items, before = [], []
        for system, record, external_id, payload, refs in wanted:
            item = OutboxItem(flow=ACTIVATION_FLOW, target_system=system, record_type=record,
                              external_id=external_id, payload=payload, errors=list(self.problems),
                              depends_on=_unique([*before, *refs]), known_refs=self.known_refs())
            items.append(item)
            before.append(item.key)
        # The CRM hears about a problem at once; otherwise it is told last, once the ERP project exists.
        crm_refs = [] if self.problems else _unique([*before, self.job_key])
        items.append(OutboxItem(flow=ACTIVATION_FLOW, target_system="salesforce", record_type="opportunity",
                                external_id=self.opportunity, payload=self.crm_update(), depends_on=crm_refs,
                                known_refs=self.known_refs()))
        return items


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
