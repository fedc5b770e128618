"""Reconciliation: does NetSuite hold exactly the invoices the ledger says it posted?

The ERP side is read with SuiteQL: every ``transaction`` whose external id starts with the
pipeline's prefix (``psp:inv:``), plus their lines. The ledger side is each invoice's
``posted_payload`` (the body NetSuite last accepted). Compared:

- count and total per subsidiary, currency and billing period (month of the invoice date);
- invoices in the ERP with our prefix that the ledger does not know (``unknown_in_erp``),
  or knows but never saw acknowledged (``unconfirmed_in_erp``: a run died after the call);
- invoices the ledger posted that the ERP does not hold (``missing_in_erp``);
- per invoice: total, line count, line keys, subsidiary, currency and date (``mismatched``).

Any difference fails the reconciliation (``passed`` is false). ``from_date`` limits both sides
to invoices dated on or after it: the pipeline's go-live (dbt var ``billing_start_date``), before
which invoices carrying the prefix may exist that no ledger ever recorded.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

import duckdb
import orjson

from ps_pipelines.lib.sources.base import chunked
from ps_pipelines.lib.sources.netsuite import NetSuiteClient, suiteql_literal
from ps_pipelines.lib.writeback.payloads import INVOICE_PREFIX

_TOLERANCE = Decimal("0.005")
_IDS_PER_QUERY = 500


@dataclass(frozen=True)
class InvoiceFacts:
    """What one invoice looks like, on either side."""

    external_id: str
    internal_id: str | None
    subsidiary: str | None
    currency: str | None
    tran_date: str | None
    total: Decimal
    line_keys: tuple[str | None, ...]

    @property
    def period(self) -> str | None:
        return self.tran_date[:7] if self.tran_date else None

    @property
    def group(self) -> tuple[str | None, str | None, str | None]:
        return self.subsidiary, self.currency, self.period


@dataclass
class GroupDifference:
    subsidiary: str | None
    currency: str | None
    period: str | None
    ledger_count: int
    erp_count: int
    ledger_total: str
    erp_total: str


@dataclass
class InvoiceDifference:
    external_id: str
    field: str
    ledger: Any
    erp: Any


@dataclass
class Reconciliation:
    ledger_invoices: int
    erp_invoices: int
    groups: list[GroupDifference] = field(default_factory=list)
    unknown_in_erp: list[str] = field(default_factory=list)
    unconfirmed_in_erp: list[str] = field(default_factory=list)
    missing_in_erp: list[str] = field(default_factory=list)
    mismatched: list[InvoiceDifference] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not (self.groups or self.unknown_in_erp or self.unconfirmed_in_erp or self.missing_in_erp
                    or self.mismatched)

    def as_metadata(self) -> dict[str, Any]:
        return {"passed": self.passed, **asdict(self)}

    def describe(self) -> str:
        """One line per kind of difference, for an asset check's failure message."""
        if self.passed:
            return f"ledger and NetSuite agree on {self.ledger_invoices} invoice(s)"
        parts = [f"{len(self.groups)} subsidiary/currency/period group(s) differ" if self.groups else "",
                 f"unknown in ledger: {', '.join(self.unknown_in_erp)}" if self.unknown_in_erp else "",
                 f"unconfirmed in ledger: {', '.join(self.unconfirmed_in_erp)}" if self.unconfirmed_in_erp else "",
                 f"missing in NetSuite: {', '.join(self.missing_in_erp)}" if self.missing_in_erp else "",
                 "mismatched: " + "; ".join(f"{d.external_id} {d.field} ledger={d.ledger} erp={d.erp}"
                                            for d in self.mismatched) if self.mismatched else ""]
        return " | ".join(part for part in parts if part)


# -- the two sides ----------------------------------------------------------------------------
def _amount(value: Any) -> Decimal:
    return Decimal(str(value)) if value not in (None, "") else Decimal(0)


def ledger_invoices(
    con: duckdb.DuckDBPyConnection, from_date: date | None = None
) -> tuple[dict[str, InvoiceFacts], set[str]]:
    """(posted invoices by external id, external ids the ledger holds but never saw posted)."""
    rows = con.execute("""
        SELECT external_id, target_id, posted_payload FROM ops.outbox
        WHERE target_system = 'netsuite' AND record_type = 'invoice'
    """).fetchall()
    posted, unposted = {}, set()
    for external_id, target_id, payload in rows:
        if payload is None:
            unposted.add(external_id)
            continue
        body = orjson.loads(payload)
        lines = body.get("item", {}).get("items", [])
        posted[external_id] = InvoiceFacts(
            external_id, target_id, (body.get("subsidiary") or {}).get("id"), (body.get("currency") or {}).get("id"),
            body.get("tranDate"), sum((_amount(line.get("amount")) for line in lines), Decimal(0)),
            tuple(sorted(str(line.get("custcol_ps_line_key")) for line in lines)))
    if from_date is not None:
        posted = {key: facts for key, facts in posted.items()
                  if facts.tran_date is None or facts.tran_date >= from_date.isoformat()}
    return posted, unposted


def _pages(client: NetSuiteClient, query: str) -> Iterator[dict[str, Any]]:
    for page in client.suiteql(query):
        yield from page


def erp_invoices(
    client: NetSuiteClient, prefix: str = INVOICE_PREFIX, from_date: date | None = None
) -> dict[str, InvoiceFacts]:
    """Every NetSuite invoice whose external id starts with ``prefix``, with its line keys."""
    pattern = suiteql_literal(prefix.replace("%", "") + "%")
    since = f" AND trandate >= TO_DATE('{from_date.isoformat()}', 'YYYY-MM-DD')" if from_date else ""
    headers = list(_pages(client, (
        "SELECT id, externalid, subsidiary, currency, trandate, foreigntotal FROM transaction "
        f"WHERE type = 'CustInvc' AND externalid LIKE {pattern}{since} ORDER BY id")))
    keys = _line_keys(client, [str(row["id"]) for row in headers])
    return {row["externalid"]: InvoiceFacts(
        row["externalid"], str(row["id"]), row.get("subsidiary"), row.get("currency"), row.get("trandate"),
        _amount(row.get("foreigntotal")), tuple(sorted(keys.get(str(row["id"]), []))))
        for row in headers}


def _line_keys(client: NetSuiteClient, transaction_ids: Sequence[str]) -> dict[str, list[str]]:
    keys: dict[str, list[str]] = defaultdict(list)
    for chunk in chunked(list(transaction_ids), _IDS_PER_QUERY):
        query = ("SELECT transaction, id, custcol_ps_line_key FROM transactionline "
                 f"WHERE transaction IN ({', '.join(suiteql_literal(i) for i in chunk)}) ORDER BY transaction, id")
        for line in _pages(client, query):
            keys[str(line["transaction"])].append(str(line.get("custcol_ps_line_key")))
    return keys


# -- comparison -------------------------------------------------------------------------------
def _group_totals(invoices: Iterable[InvoiceFacts]) -> dict[tuple, tuple[int, Decimal]]:
    totals: dict[tuple, tuple[int, Decimal]] = {}
    for invoice in invoices:
        count, total = totals.get(invoice.group, (0, Decimal(0)))
        totals[invoice.group] = (count + 1, total + invoice.total)
    return totals


def compare_groups(ledger: Iterable[InvoiceFacts], erp: Iterable[InvoiceFacts]) -> list[GroupDifference]:
    ours, theirs = _group_totals(ledger), _group_totals(erp)
    differences = []
    for group in sorted(set(ours) | set(theirs), key=lambda g: tuple(str(part) for part in g)):
        (count_a, total_a), (count_b, total_b) = ours.get(group, (0, Decimal(0))), theirs.get(group, (0, Decimal(0)))
        if count_a != count_b or abs(total_a - total_b) > _TOLERANCE:
            differences.append(GroupDifference(*group, count_a, count_b, str(total_a), str(total_b)))
    return differences


def compare_invoice(ledger: InvoiceFacts, erp: InvoiceFacts) -> list[InvoiceDifference]:
    differences = []
    if abs(ledger.total - erp.total) > _TOLERANCE:
        differences.append(InvoiceDifference(ledger.external_id, "total", str(ledger.total), str(erp.total)))
    if len(ledger.line_keys) != len(erp.line_keys):
        differences.append(InvoiceDifference(ledger.external_id, "line_count", len(ledger.line_keys),
                                             len(erp.line_keys)))
    elif ledger.line_keys != erp.line_keys:
        differences.append(InvoiceDifference(ledger.external_id, "line_keys", list(ledger.line_keys),
                                             list(erp.line_keys)))
    for name in ("internal_id", "subsidiary", "currency", "tran_date"):
        ours, theirs = getattr(ledger, name), getattr(erp, name)
        if ours is not None and str(ours) != str(theirs):
            differences.append(InvoiceDifference(ledger.external_id, name, ours, theirs))
    return differences


def reconcile_invoices(
    con: duckdb.DuckDBPyConnection,
    netsuite: NetSuiteClient,
    *,
    prefix: str = INVOICE_PREFIX,
    from_date: date | None = None,
) -> Reconciliation:
    """Compare the ledger's posted invoices with NetSuite's (see the module docstring)."""
    ledger, unposted = ledger_invoices(con, from_date)
    erp = erp_invoices(netsuite, prefix, from_date)
    both = sorted(set(ledger) & set(erp))
    return Reconciliation(
        ledger_invoices=len(ledger),
        erp_invoices=len(erp),
        groups=compare_groups(ledger.values(), erp.values()),
        unknown_in_erp=sorted(set(erp) - set(ledger) - unposted),
        unconfirmed_in_erp=sorted((set(erp) - set(ledger)) & unposted),
        missing_in_erp=sorted(set(ledger) - set(erp)),
        mismatched=[difference for key in both for difference in compare_invoice(ledger[key], erp[key])],
    )
