"""Reconciliation: does the ERP hold exactly the invoices the ledger says it posted?

The ERP is NetSuite or Dynamics 365 (``reconcile_invoices`` reads the one its client is; in
Dynamics 365 the free-text invoices whose ``ExternalInvoiceId`` carries the prefix, their lines'
``InvoiceText`` as line keys, and the ledger's payloads through the ERP adapter). For NetSuite:

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

The duplicate sweep (``sweep_duplicates``) is the last line of defence behind the lease fence
on creates without an idempotency key: it finds platform records that carry our external
reference but are not the ledger's target (two Kantata workspaces for one deal), keeps the
ledger's target and flags the other in the platform, never deleting it, and records both in
``ops.duplicate_records``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import duckdb
import orjson

from ps_pipelines.lib.http import ApiError
from ps_pipelines.lib.sources.base import chunked
from ps_pipelines.lib.sources.d365 import D365Client
from ps_pipelines.lib.sources.netsuite import NetSuiteClient, suiteql_literal
from ps_pipelines.lib.writeback import d365
from ps_pipelines.lib.writeback.erp import DEFAULT_ERP, erp_adapter
from ps_pipelines.lib.writeback.payloads import INVOICE_PREFIX
from ps_pipelines.lib.writeback.senders import DEFAULT_ADOPT_MARGIN, SENDERS, Sender, Targets

_TOLERANCE = Decimal("0.005")
ERP_NAMES = {"netsuite": "NetSuite", d365.SYSTEM: "Dynamics 365"}
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
    erp: str = "NetSuite"  # named in the description
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
            return f"ledger and {self.erp} agree on {self.ledger_invoices} invoice(s)"
        parts = [f"{len(self.groups)} subsidiary/currency/period group(s) differ" if self.groups else "",
                 f"unknown in ledger: {', '.join(self.unknown_in_erp)}" if self.unknown_in_erp else "",
                 f"unconfirmed in ledger: {', '.join(self.unconfirmed_in_erp)}" if self.unconfirmed_in_erp else "",
                 f"missing in {self.erp}: {', '.join(self.missing_in_erp)}" if self.missing_in_erp else "",
                 "mismatched: " + "; ".join(f"{d.external_id} {d.field} ledger={d.ledger} erp={d.erp}"
                                            for d in self.mismatched) if self.mismatched else ""]
        return " | ".join(part for part in parts if part)


# -- the two sides ----------------------------------------------------------------------------
def _amount(value: Any) -> Decimal:
    return Decimal(str(value)) if value not in (None, "") else Decimal(0)


def ledger_invoices(
    con: duckdb.DuckDBPyConnection, from_date: date | None = None, erp: str = DEFAULT_ERP
) -> tuple[dict[str, InvoiceFacts], set[str]]:
    """(posted invoices by external id, external ids the ledger holds but never saw posted), of
    the invoices the ledger sent to ``erp``; each posted payload read by the ERP's adapter."""
    adapter = erp_adapter(erp)
    rows = con.execute("""
        SELECT external_id, target_id, posted_payload FROM ops.outbox
        WHERE target_system = ? AND record_type = ?
    """, [adapter.system, adapter.invoice_record]).fetchall()
    posted, unposted = {}, set()
    for external_id, target_id, payload in rows:
        if payload is None:
            unposted.add(external_id)
            continue
        company, currency, tran_date, total, keys = adapter.invoice_facts(orjson.loads(payload))
        posted[external_id] = InvoiceFacts(external_id, target_id, company, currency,
                                           tran_date[:10] if tran_date else None, total, tuple(sorted(keys)))
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
    conditions = ["type = 'CustInvc'", f"externalid LIKE {pattern}"]
    if from_date:
        conditions.append(f"trandate >= TO_DATE('{from_date.isoformat()}', 'YYYY-MM-DD')")
    # SuiteQL answers trandate in the account's display format (5/15/2026): ask for ISO, which is
    # what the ledger's posted tranDate holds. The subsidiary lives on the main line.
    headers = [row for page in client.suiteql_by_key(
        "id, externalid, currency, TO_CHAR(trandate, 'YYYY-MM-DD') AS trandate, foreigntotal", "transaction",
        conditions) for row in page]
    ids = [str(row["id"]) for row in headers]
    subsidiaries = client.main_line_values(ids, ["subsidiary"])
    keys = _line_keys(client, ids)
    return {row["externalid"]: InvoiceFacts(
        row["externalid"], str(row["id"]), subsidiaries.get(str(row["id"]), {}).get("subsidiary"),
        row.get("currency"), row.get("trandate"), _amount(row.get("foreigntotal")),
        tuple(sorted(keys.get(str(row["id"]), []))))
        for row in headers}


def _line_keys(client: NetSuiteClient, transaction_ids: Sequence[str]) -> dict[str, list[str]]:
    keys: dict[str, list[str]] = defaultdict(list)
    for chunk in chunked(list(transaction_ids), _IDS_PER_QUERY):
        # Item lines only: the main line (mainline = 'T') and tax lines are no invoice lines.
        query = ("SELECT transaction, id, custcol_ps_line_key FROM transactionline "
                 f"WHERE mainline = 'F' AND taxline = 'F' "
                 f"AND transaction IN ({', '.join(suiteql_literal(i) for i in chunk)}) ORDER BY transaction, id")
        for line in _pages(client, query):
            keys[str(line["transaction"])].append(str(line.get("custcol_ps_line_key")))
    return keys


def d365_invoices(client: D365Client, prefix: str = INVOICE_PREFIX, from_date: date | None = None
                  ) -> dict[str, InvoiceFacts]:
    """Every Dynamics 365 free-text invoice whose ``ExternalInvoiceId`` starts with ``prefix``,
    not flagged a duplicate: its legal entity, currency, date, line total and line keys
    (``InvoiceText``)."""
    found = {}
    for header, lines in d365.posted_invoices(client, prefix):
        day = str(header.get("InvoiceDate") or "")[:10] or None
        if from_date is not None and day is not None and day < from_date.isoformat():
            continue
        found[str(header["ExternalInvoiceId"])] = InvoiceFacts(
            str(header["ExternalInvoiceId"]), str(header["InvoiceIdentifier"]), header.get(d365.COMPANY),
            header.get("CurrencyCode"), day, sum((_amount(line.get("TransactionCurrencyAmount")) for line in lines),
                                                 Decimal(0)),
            tuple(sorted(str(line.get("InvoiceText")) for line in lines)))
    return found


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


# How each ERP's invoices are read, by the client's platform (an ``ErpAdapter.system``).
ERP_READERS: dict[str, Callable[..., dict[str, InvoiceFacts]]] = {"netsuite": erp_invoices, d365.SYSTEM: d365_invoices}


def reconcile_invoices(
    con: duckdb.DuckDBPyConnection,
    erp_client: NetSuiteClient | D365Client,
    *,
    prefix: str = INVOICE_PREFIX,
    from_date: date | None = None,
) -> Reconciliation:
    """Compare the ledger's posted invoices with the ERP's (see the module docstring); the ERP
    is the client's (NetSuite or Dynamics 365), the report the same for either."""
    ledger, unposted = ledger_invoices(con, from_date, erp_client.platform)
    erp = ERP_READERS[erp_client.platform](erp_client, prefix, from_date)
    both = sorted(set(ledger) & set(erp))
    return Reconciliation(
        ledger_invoices=len(ledger),
        erp_invoices=len(erp),
        erp=ERP_NAMES.get(erp_client.platform, erp_client.platform),
        groups=compare_groups(ledger.values(), erp.values()),
        unknown_in_erp=sorted(set(erp) - set(ledger) - unposted),
        unconfirmed_in_erp=sorted((set(erp) - set(ledger)) & unposted),
        missing_in_erp=sorted(set(ledger) - set(erp)),
        mismatched=[difference for key in both for difference in compare_invoice(ledger[key], erp[key])],
    )


# -- duplicates of creates without an idempotency key ------------------------------------------
FLAGGED, RESOLUTION_FAILED = "flagged", "failed"


@dataclass
class DuplicateRecord:
    """A platform record carrying a ledger row's reference that is not the row's target."""

    target_system: str
    record_type: str
    outbox_key: str
    external_id: str
    kept_id: str  # the ledger's target: kept
    duplicate_id: str
    resolution: str  # flagged | failed
    detail: str | None
    new: bool  # found by this sweep (not resolved by an earlier one)


@dataclass
class DuplicateSweep:
    """What one sweep found, and what it did."""

    checked: int  # ledger rows whose records were looked at
    duplicates: list[DuplicateRecord] = field(default_factory=list)
    # Rows with no target yet whose reference is on several records: key -> record ids. The
    # next posting adopts one of them; a later sweep flags the others.
    unconfirmed: dict[str, list[str]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)  # systems without a client here

    @property
    def new(self) -> list[DuplicateRecord]:
        return [d for d in self.duplicates if d.new]

    @property
    def unresolved(self) -> list[DuplicateRecord]:
        return [d for d in self.duplicates if d.resolution != FLAGGED]

    @property
    def passed(self) -> bool:
        """Nothing new, nothing left unresolved: duplicates flagged by earlier sweeps do not fail it."""
        return not (self.new or self.unresolved or self.unconfirmed)

    def describe(self) -> str:
        if self.passed:
            earlier = len(self.duplicates)
            return (f"no duplicate records among {self.checked} created record(s)"
                    + (f" ({earlier} flagged by earlier sweeps)" if earlier else ""))
        parts = [f"{d.target_system} {d.record_type} {d.external_id}: kept {d.kept_id}, duplicate {d.duplicate_id} "
                 f"({d.resolution}: {d.detail})" for d in self.duplicates if d.new or d.resolution != FLAGGED]
        parts += [f"{key}: not posted yet, records {', '.join(ids)}" for key, ids in self.unconfirmed.items()]
        return " | ".join(parts)

    def as_metadata(self) -> dict[str, Any]:
        return {"passed": self.passed, "checked": self.checked, "duplicates": [asdict(d) for d in self.duplicates],
                "unconfirmed": self.unconfirmed, "skipped": self.skipped}


def _created_rows(con: duckdb.DuckDBPyConnection, system: str, record: str) -> list[tuple[str, str, str | None, Any]]:
    """(key, external id, target id, first attempt) of the rows of a type that were ever attempted."""
    return con.execute("""
        SELECT o.outbox_key, o.external_id, o.target_id, min(a.started_at)
        FROM ops.outbox o JOIN ops.outbox_attempts a USING (outbox_key)
        WHERE o.target_system = ? AND o.record_type = ?
        GROUP BY ALL ORDER BY o.outbox_key
    """, [system, record]).fetchall()


def _resolved(con: duckdb.DuckDBPyConnection, system: str, record: str) -> dict[str, str]:
    rows = con.execute("""SELECT duplicate_id, resolution FROM ops.duplicate_records
                          WHERE target_system = ? AND record_type = ?""", [system, record]).fetchall()
    return dict(rows)


def _record_duplicate(con: duckdb.DuckDBPyConnection, found: DuplicateRecord, run_id: str, now: datetime) -> None:
    con.execute("""
        INSERT INTO ops.duplicate_records (target_system, record_type, duplicate_id, outbox_key, external_id, kept_id,
            found_at, found_run_id, resolution, resolved_at, detail)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (target_system, record_type, duplicate_id) DO UPDATE SET
            kept_id = excluded.kept_id, resolution = excluded.resolution, resolved_at = excluded.resolved_at,
            detail = excluded.detail
    """, [found.target_system, found.record_type, found.duplicate_id, found.outbox_key, found.external_id,
          found.kept_id, now, run_id, found.resolution, now if found.resolution == FLAGGED else None, found.detail])


def _sweep_one(
    con: duckdb.DuckDBPyConnection, targets: Targets, kind: tuple[str, str], sender: Sender, sweep: DuplicateSweep,
    *, run_id: str, now: datetime, resolve: bool, margin: timedelta,
) -> None:
    system, record = kind
    rows = _created_rows(con, system, record)
    if not rows:
        return
    assert sender.find_all is not None and sender.flag_duplicate is not None  # guaranteed by Sender
    # Our records were made after our first attempt (less clock skew): no need to read older ones.
    since = min(first for *_, first in rows) - margin
    found = sender.find_all(targets, [external_id for _, external_id, _, _ in rows], since)
    resolved = _resolved(con, system, record)
    sweep.checked += len(rows)
    for key, external_id, target_id, _ in rows:
        ids = [str(r["id"]) for r in found.get(external_id, [])]
        if not target_id:
            if len(ids) > 1:
                sweep.unconfirmed[key] = ids
            continue
        for duplicate in found.get(external_id, []):
            duplicate_id = str(duplicate["id"])
            if duplicate_id == target_id:
                continue
            if resolved.get(duplicate_id) == FLAGGED:
                sweep.duplicates.append(DuplicateRecord(system, record, key, external_id, target_id, duplicate_id,
                                                        FLAGGED, "flagged by an earlier sweep", new=False))
                continue
            entry = DuplicateRecord(system, record, key, external_id, target_id, duplicate_id, RESOLUTION_FAILED,
                                    "found; not resolved (resolve=False)", new=True)
            if resolve:
                try:
                    entry.detail = sender.flag_duplicate(targets, duplicate, target_id)
                    entry.resolution = FLAGGED
                except ApiError as exc:  # reported, and tried again by the next sweep
                    entry.detail = f"could not flag it: {exc}"
            _record_duplicate(con, entry, run_id, now)
            sweep.duplicates.append(entry)


def sweep_duplicates(
    con: duckdb.DuckDBPyConnection,
    targets: Targets,
    *,
    run_id: str,
    now: datetime,
    resolve: bool = True,
    margin: timedelta = DEFAULT_ADOPT_MARGIN,
) -> DuplicateSweep:
    """Find, per sender that creates without an idempotency key, the records carrying a ledger
    row's reference besides the row's target; flag each in the platform (``resolve``), keeping
    the target, and record it in ``ops.duplicate_records`` (see the module docstring)."""
    sweep = DuplicateSweep(checked=0)
    for kind, sender in SENDERS.items():
        if not sender.create_without_key:
            continue
        if getattr(targets, kind[0], None) is None:
            sweep.skipped.append(kind[0])
            continue
        _sweep_one(con, targets, kind, sender, sweep, run_id=run_id, now=now, resolve=resolve, margin=margin)
    return sweep
