"""ERP adapters: one per ERP, the record types and payload builders of the write-back's three
ERP records (customer, project, invoice). The flows (activation, billing, reconciliation) are
written once and pick the adapter by the outbound row's ``erp_platform`` (``netsuite`` when the
outbound model predates the column, so the NetSuite keys and payloads never change):

- NetSuite (``writeback.netsuite``): ``netsuite:customer|job|invoice:<id>``, upserts by external id;
- Dynamics 365 (``writeback.d365``): ``d365:customer|project|invoice:<id>``, customers and
  projects under keys derived from the CRM ids, invoices as free-text invoices.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ps_pipelines.lib.writeback import d365, netsuite
from ps_pipelines.lib.writeback.values import Line

DEFAULT_ERP = "netsuite"

# (company/subsidiary, currency, invoice date, total, line keys) of a posted invoice payload.
InvoiceFactsFn = Callable[[Mapping[str, Any]], tuple[str | None, str | None, str | None, Decimal, list[str]]]


@dataclass(frozen=True)
class ErpAdapter:
    system: str  # the ledger's target system, a ``Targets`` field and a resource key
    customer_record: str
    project_record: str
    invoice_record: str
    customer_payload: Callable[[Any], dict[str, Any]]  # of an activation deal
    project_payload: Callable[[Any], dict[str, Any]]
    invoice_payload: Callable[[list[Line], Mapping[str, str] | None], dict[str, Any]]  # one invoice's lines
    invoice_facts: InvoiceFactsFn


ERP_ADAPTERS: dict[str, ErpAdapter] = {
    netsuite.SYSTEM: ErpAdapter(netsuite.SYSTEM, netsuite.CUSTOMER, netsuite.PROJECT, netsuite.INVOICE,
                                netsuite.customer_payload, netsuite.project_payload, netsuite.invoice_payload,
                                netsuite.invoice_facts),
    d365.SYSTEM: ErpAdapter(d365.SYSTEM, d365.CUSTOMER, d365.PROJECT, d365.INVOICE, d365.customer_payload,
                            d365.project_payload, d365.invoice_payload, d365.invoice_facts),
}


def erp_adapter(name: str | None, what: str = "row") -> ErpAdapter:
    """The adapter of ERP ``name`` (``None``: the default); ``what`` names the row in the error."""
    name = name or DEFAULT_ERP
    if name not in ERP_ADAPTERS:
        raise ValueError(f"erp_platform {name!r} of {what} has no ERP adapter; known: {', '.join(ERP_ADAPTERS)}")
    return ERP_ADAPTERS[name]
