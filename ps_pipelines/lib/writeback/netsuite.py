"""The NetSuite side of the write-back: the bodies of customer, job and invoice upserts.

Keys: ``netsuite:customer:<CRM account id>``, ``netsuite:job:<opportunity id>``,
``netsuite:invoice:<invoice external id>``; each is ``PUT /record/v1/<type>/eid:<externalId>``
(senders), so the payload carries its ``externalId``. Every invoice line carries its
``custcol_ps_line_key`` so each ERP line traces back to its source row.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from ps_pipelines.lib.writeback.outbox import ref
from ps_pipelines.lib.writeback.values import Line, id_ref, money, text

SYSTEM = "netsuite"
CUSTOMER, PROJECT, INVOICE = "customer", "job", "invoice"


def customer_payload(deal: Any) -> dict[str, Any]:
    """The customer of a deal's account (``deal``: activation's ``_Deal``)."""
    row = deal.row
    return {"externalId": deal.account, "companyName": text(row["company_name"]),
            "subsidiary": id_ref(row["erp_subsidiary_id"]), "currency": id_ref(row["erp_currency_id"])}


def project_payload(deal: Any) -> dict[str, Any]:
    """The job of a deal, ``parent`` = its customer row's internal id."""
    row = deal.row
    return {"externalId": deal.opportunity, "companyName": text(row["project_name"]),
            "parent": {"id": ref(deal.customer_key)} if deal.customer_key else None,
            "subsidiary": id_ref(row["erp_subsidiary_id"]), "currency": id_ref(row["erp_currency_id"]),
            "startDate": text(row["start_date"]), "projectedEndDate": text(row["end_date"])}


def invoice_payload(lines: list[Line], item_ids: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The NetSuite invoice body of one invoice's lines (header fields from the first line).

    ``item_ids`` maps service item names to NetSuite item internal ids; without it the name is
    the item reference (what the sandbox's item list uses).
    """
    head = lines[0]
    currency = head["currency_code"]
    items = [{
        "item": {"id": (item_ids or {}).get(line["item_name"], line["item_name"])},
        "description": line["memo"],
        "quantity": line["quantity"],
        "rate": line["unit_rate"],
        "amount": money(line["amount"], currency),
        "custcol_ps_line_key": line["line_external_id"],
    } for line in lines]
    return {
        "externalId": head["invoice_external_id"],
        "entity": id_ref(head["erp_customer_id"]),
        "job": id_ref(head["erp_project_id"]),
        "subsidiary": id_ref(head["erp_subsidiary_id"]),
        "currency": id_ref(head["erp_currency_id"]),
        "tranDate": head["invoice_date"],
        # A project with no PSA project (invoiced on its ERP job only) is named by the job.
        "memo": f"{head['billing_model']} {head['billing_period']}, "
                f"project {head['psa_project_id'] or head['erp_project_id']}",
        "item": {"items": items},
    }


def _amount(value: Any) -> Decimal:
    return Decimal(str(value)) if value not in (None, "") else Decimal(0)


def invoice_facts(payload: Mapping[str, Any]) -> tuple[str | None, str | None, str | None, Decimal, list[str]]:
    """(subsidiary, currency, date, total, line keys) of a posted invoice body."""
    lines = payload.get("item", {}).get("items", [])
    return ((payload.get("subsidiary") or {}).get("id"), (payload.get("currency") or {}).get("id"),
            payload.get("tranDate"), sum((_amount(line.get("amount")) for line in lines), Decimal(0)),
            [str(line.get("custcol_ps_line_key")) for line in lines])
