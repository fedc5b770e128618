"""The Dynamics 365 Finance and Operations side of the write-back: payloads, senders, look-ups.

Entities (``ps_sandbox.catalog.d365`` cites Microsoft's documentation for each):

- customer: ``CustomersV3`` in the deal's legal entity (``dataAreaId`` = ``erp_subsidiary_id``),
  ``CustomerAccount`` derived from the CRM account id (``customer_account``), ``CustomerGroupId``
  required, the firm's extension field ``PsCrmAccountId`` = the CRM account id;
- project: ``Projects``, ``ProjectID`` derived from the opportunity id, ``CustomerAccount`` = the
  customer's account, ``PsCrmOpportunityId`` = the opportunity id;
- invoice: a ``FreeTextInvoiceHeaders`` row and its ``FreeTextInvoiceLines`` in one ``$batch``
  change set (all or nothing), the header's ``ExternalInvoiceId`` = our invoice external id and
  each line's ``InvoiceText`` = our line key (``psp:inl:...``), so reconciliation and the
  warehouse trace every line.

Customers and projects have keys we choose, so their create is an upsert in effect: look the
record up (by the CRM id a person may have set on an existing record, then by our key), PATCH it
if found, POST otherwise, and a POST answered "already exists" (a lost answer, a race) adopts
the record with a PATCH. An invoice header's key (``InvoiceIdentifier``, a RecId) is assigned by
the server, so the invoice sender creates without an idempotency key and is fenced by the
poster's lease like a Kantata workspace: ``find_invoice`` looks it up by ``ExternalInvoiceId``.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from ps_pipelines.lib.http import ValidationError
from ps_pipelines.lib.sources.base import chunked
from ps_pipelines.lib.sources.d365 import IDS_PER_FILTER, ChangeRequest, D365Client, odata_literal
from ps_pipelines.lib.writeback.outbox import OutboxRow, ref
from ps_pipelines.lib.writeback.values import Line, money, plain, text

SYSTEM = "d365"
CUSTOMER, PROJECT, INVOICE = "customer", "project", "invoice"
CUSTOMERS, PROJECTS = "CustomersV3", "Projects"
HEADERS, LINES = "FreeTextInvoiceHeaders", "FreeTextInvoiceLines"
HEADER_LINES = "CustFreeTextInvoiceHeader"  # the header's navigation property to its lines [META]
COMPANY = "dataAreaId"
# The customer group new customers join: CUSTOMERGROUPID is mandatory on CustomersV3
# ("Customers V3 entity", learn.microsoft.com/en-us/dynamics365/fin-ops-core/dev-itpro/data-entities/
# entity-customers-v3-customerv3); the firm's group for project customers (the sandbox's PSCUST).
CUSTOMER_GROUP = "PSCUST"
# CustomerAccount is the CustAccount EDT, 20 characters; ProjectID the ProjId EDT, 20 characters
# [UNVERIFIED: the EDT lengths as the standard application declares them].
KEY_MAX = 20
DUPLICATE_MARK = "DUPLICATE of invoice {kept}; do not post"


# -- keys ------------------------------------------------------------------------------------------
def derived_key(crm_id: str, max_length: int = KEY_MAX) -> str:
    """A key of at most ``max_length`` characters for the record of ``crm_id``, the same on every
    run. F&O compares keys case-insensitively: an 18-character Salesforce id stays unique in any
    case (its last three characters encode the case of the first 15), a HubSpot id is digits.
    A longer id becomes ``PS`` and a hash of it."""
    if len(crm_id) <= max_length:
        return crm_id.upper()
    return "PS" + hashlib.sha256(crm_id.encode()).hexdigest()[: max_length - 2].upper()


# -- payloads ----------------------------------------------------------------------------------------
def customer_payload(deal: Any) -> dict[str, Any]:
    """The ``CustomersV3`` body of a deal's account (``deal``: activation's ``_Deal``)."""
    row = deal.row
    return {COMPANY: text(row["erp_subsidiary_id"]), "CustomerAccount": derived_key(deal.account),
            "OrganizationName": text(row["company_name"]), "CustomerGroupId": CUSTOMER_GROUP,
            "SalesCurrencyCode": text(row["currency_code"]), "PsCrmAccountId": deal.account}


def project_payload(deal: Any) -> dict[str, Any]:
    """The ``Projects`` body of a deal; its customer is the deal's customer row's account."""
    row = deal.row
    return {COMPANY: text(row["erp_subsidiary_id"]), "ProjectID": derived_key(deal.opportunity),
            "ProjectName": text(row["project_name"]),
            "CustomerAccount": ref(deal.customer_key) if deal.customer_key else None,
            "ProjectedStartDate": text(row["start_date"]), "ProjectedEndDate": text(row["end_date"]),
            "PsCrmOpportunityId": deal.opportunity}


def invoice_payload(lines: list[Line], item_ids: Mapping[str, str] | None = None) -> dict[str, Any]:
    """One free-text invoice of ``lines`` (header fields from the first): ``header`` and
    ``lines`` bodies. Service items are NetSuite's; a free-text line names no item."""
    head = lines[0]
    currency = head["currency_code"]
    header = {COMPANY: text(head["erp_subsidiary_id"]), "CustomerAccount": text(head["erp_customer_id"]),
              "CurrencyCode": text(currency), "InvoiceDate": text(head["invoice_date"]),
              "ExternalInvoiceId": text(head["invoice_external_id"]),
              "InvoiceName": f"{head['billing_model']} {head['billing_period']}"}
    body_lines = [{
        "InvoiceText": line["line_external_id"], "ProjectId": text(line["erp_project_id"]),
        "Description": line["memo"], "Quantity": plain(line["quantity"]), "UnitPrice": plain(line["unit_rate"]),
        "TransactionCurrencyAmount": money(line["amount"], currency),
    } for line in lines]
    return {"header": header, "lines": body_lines}


def invoice_facts(payload: Mapping[str, Any]) -> tuple[str | None, str | None, str | None, Decimal, list[str]]:
    """(company, currency, date, total, line keys) of a posted invoice payload, as reconciliation reads it."""
    header, lines = payload.get("header") or {}, payload.get("lines") or []
    total = sum((Decimal(str(line.get("TransactionCurrencyAmount") or 0)) for line in lines), Decimal(0))
    return (header.get(COMPANY), header.get("CurrencyCode"), header.get("InvoiceDate"), total,
            [str(line.get("InvoiceText")) for line in lines])


# -- look-ups ----------------------------------------------------------------------------------------
def _eq(field: str, value: str) -> str:
    return f"{field} eq {odata_literal(value)}"


def _find(client: D365Client, entity: str, key_field: str, crm_field: str, crm_id: str,
          company: str | None) -> str | None:
    # A customer or project belongs to one legal entity: the same CRM account may be a customer
    # of several, so a look-up for a write names the company.
    query = _eq(crm_field, crm_id) + (f" and {_eq(COMPANY, company)}" if company else "")
    return min((str(row[key_field]) for row in client.find(entity, query)), default=None)


def find_customer(client: D365Client, crm_account_id: str, company: str | None = None) -> str | None:
    """The ``CustomerAccount`` carrying ``crm_account_id`` (in ``company``; the first by account)."""
    return _find(client, CUSTOMERS, "CustomerAccount", "PsCrmAccountId", crm_account_id, company)


def find_project(client: D365Client, opportunity_id: str, company: str | None = None) -> str | None:
    """The ``ProjectID`` carrying ``opportunity_id`` (in ``company``; the first by id)."""
    return _find(client, PROJECTS, "ProjectID", "PsCrmOpportunityId", opportunity_id, company)


LOOKUPS = {CUSTOMER: find_customer, PROJECT: find_project}


# -- customer and project senders -----------------------------------------------------------------------
def _upsert(client: D365Client, entity: str, key_field: str, found: str | None, body: dict[str, Any]) -> str:
    """PATCH the record ``found`` (or of our key), else POST; "already exists" adopts it."""
    company = body[COMPANY]
    values = {name: value for name, value in body.items() if value is not None}
    changes = {name: value for name, value in values.items() if name not in (COMPANY, key_field)}
    if found is not None:
        client.update(entity, {COMPANY: company, key_field: found}, changes)
        return found
    try:
        created = client.create(entity, values)
        return str(created.get(key_field) or values[key_field])
    except ValidationError as exc:
        if "already exists" not in str(exc):
            raise
        # The earlier attempt's create landed (its answer was lost), or a person made it.
        client.update(entity, {COMPANY: company, key_field: values[key_field]}, changes)
        return str(values[key_field])


def post_customer(client: D365Client, row: OutboxRow, body: dict[str, Any]) -> str:
    found = row.target_id or find_customer(client, row.external_id, body[COMPANY])
    return _upsert(client, CUSTOMERS, "CustomerAccount", found, body)


def post_project(client: D365Client, row: OutboxRow, body: dict[str, Any]) -> str:
    found = row.target_id or find_project(client, row.external_id, body[COMPANY])
    return _upsert(client, PROJECTS, "ProjectID", found, body)


# -- the invoice sender -------------------------------------------------------------------------------
def _header_key(company: str, identifier: str) -> str:
    return f"{HEADERS}({COMPANY}={odata_literal(company)},InvoiceIdentifier={int(identifier)})"


def post_invoice(client: D365Client, row: OutboxRow, body: dict[str, Any]) -> str:
    """Create the invoice (header and lines in one change set), or, for a new version of an
    invoice we made (``row.target_id``), replace its header fields and lines in one change set.
    A posted invoice cannot change: refused, naming the invoice."""
    header, lines = body["header"], body["lines"]
    if row.target_id:
        return _replace_invoice(client, row, header, lines)
    requests = [ChangeRequest("POST", HEADERS, header, content_id="1")]
    requests += [ChangeRequest("POST", f"$1/{HEADER_LINES}", line, content_id=str(n))
                 for n, line in enumerate(lines, start=2)]
    answers = client.change_set(requests, record_id=row.external_id)
    return str((answers[0].body or {})["InvoiceIdentifier"])


def _replace_invoice(client: D365Client, row: OutboxRow, header: dict[str, Any], lines: list[dict[str, Any]]) -> str:
    company, identifier = header[COMPANY], str(row.target_id)
    [current] = client.find(HEADERS, f"{_eq(COMPANY, company)} and InvoiceIdentifier eq {int(identifier)}") or [None]
    if current is None:
        raise ValidationError(SYSTEM, "PATCH", _header_key(company, identifier), 404,
                              f"free text invoice {identifier} ({row.external_id}) is gone from {company}",
                              row.external_id)
    if current.get("IsPosted") == "Yes":
        raise ValidationError(SYSTEM, "PATCH", _header_key(company, identifier), None,
                              f"invoice {row.external_id} is posted in Dynamics 365 as {current.get('InvoiceId')} "
                              f"({company}): a posted invoice cannot change; correct it with a credit note",
                              row.external_id)
    old_lines = client.find(LINES, f"{_eq(COMPANY, company)} and ParentRecId eq {int(identifier)}")
    path = _header_key(company, identifier)
    changes = {name: value for name, value in header.items() if name != COMPANY}
    requests = [ChangeRequest("PATCH", path, changes)]
    requests += [ChangeRequest("DELETE", f"{LINES}({COMPANY}={odata_literal(company)},"
                                         f"LineNumber={line['LineNumber']},ParentRecId={int(identifier)})")
                 for line in old_lines]
    requests += [ChangeRequest("POST", f"{path}/{HEADER_LINES}", line) for line in lines]
    # Not re-sent by the client after a failure that may have applied it (its deletes would then
    # fail the repeat): the next run reads the lines again and replaces what it finds.
    client.change_set(requests, record_id=row.external_id)
    return identifier


def _is_duplicate(header: Mapping[str, Any]) -> bool:
    return str(header.get("CustomerReference") or "").startswith("DUPLICATE of invoice")


def invoices_by_external_id(client: D365Client, external_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """Free-text invoice headers (any company) whose ``ExternalInvoiceId`` is one of
    ``external_ids``, oldest first (RecIds grow), each with ``id`` = its ``InvoiceIdentifier``."""
    found: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for chunk in chunked(list(dict.fromkeys(external_ids)), IDS_PER_FILTER):
        for header in client.find(HEADERS, " or ".join(_eq("ExternalInvoiceId", i) for i in chunk)):
            found[str(header["ExternalInvoiceId"])].append({**header, "id": str(header["InvoiceIdentifier"])})
    return {key: sorted(rows, key=lambda h: int(h["InvoiceIdentifier"])) for key, rows in found.items()}


def find_invoice(client: D365Client, row: OutboxRow, changed_since: datetime | None = None) -> str | None:
    """The oldest header of ``row``'s invoice not flagged a duplicate. The entity has no
    modified timestamp, so ``changed_since`` cannot narrow the read (catalog: Modified timestamps)."""
    headers = invoices_by_external_id(client, [row.external_id]).get(row.external_id, [])
    return next((h["id"] for h in headers if not _is_duplicate(h)), None)


def flag_duplicate_invoice(client: D365Client, duplicate: dict[str, Any], kept_id: str) -> str:
    """Mark a second free-text invoice of one of ours as a duplicate of ``kept_id`` in its
    ``CustomerReference`` (what the invoice list shows an accountant); never delete it: a person
    deletes it in the client. A posted one can only be reported (a credit note reverses it)."""
    identifier = str(duplicate["InvoiceIdentifier"])
    if duplicate.get("IsPosted") == "Yes":
        return (f"not marked: free text invoice {identifier} is posted as {duplicate.get('InvoiceId')}; "
                f"reverse it with a credit note ({kept_id} is the one in use)")
    client.update(HEADERS, {COMPANY: duplicate[COMPANY], "InvoiceIdentifier": int(identifier)},
                  {"CustomerReference": DUPLICATE_MARK.format(kept=kept_id)})
    return f"marked as a duplicate of {kept_id}; not deleted (unposted: delete it in Dynamics 365)"


# -- reconciliation -----------------------------------------------------------------------------------
def posted_invoices(client: D365Client, prefix: str) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Every free-text invoice whose ``ExternalInvoiceId`` starts with ``prefix`` (F&O's
    wildcard equality, the documented "contains"), not flagged a duplicate, with its lines."""
    headers = [h for h in client.find(HEADERS, _eq("ExternalInvoiceId", prefix.replace("*", "") + "*"))
               if not _is_duplicate(h)]
    lines: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for chunk in chunked(headers, IDS_PER_FILTER):
        query = " or ".join(f"ParentRecId eq {int(h['InvoiceIdentifier'])}" for h in chunk)
        for line in client.find(LINES, query):
            lines[(str(line[COMPANY]).lower(), int(line["ParentRecId"]))].append(line)
    return [(h, lines.get((str(h[COMPANY]).lower(), int(h["InvoiceIdentifier"])), [])) for h in headers]
