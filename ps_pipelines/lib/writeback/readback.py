"""What a posting changes on the platforms, named as the raw entities to read back.

The marts are built from the platforms' own data, so after a run posts, the raw tables the
posts landed in are stale until they are ingested again. The main job reads them back
(incrementally) and rebuilds what is downstream before it publishes, so the published marts
show what the ERP, the PSA and the CRM hold after the run, not before it.
"""

from __future__ import annotations

from collections.abc import Iterable

import duckdb

from ps_pipelines.lib.contracts import certinia, d365, hubspot, kantata, netsuite, salesforce

# (target system, record type) of a ledger row -> the contract keys of the raw tables its
# write lands in. Every sender must appear here (tests check it), or a new kind of posting
# would leave the marts one run behind.
WRITTEN_ENTITIES: dict[tuple[str, str], tuple[str, ...]] = {
    ("netsuite", "customer"): (netsuite.CUSTOMERS.key,),
    ("netsuite", "job"): (netsuite.PROJECTS.key,),
    ("netsuite", "invoice"): (netsuite.INVOICES.key, netsuite.INVOICE_LINES.key),
    ("d365", "customer"): (d365.CUSTOMERS.key,),
    ("d365", "project"): (d365.PROJECTS.key,),
    # A free-text invoice; the posted journal (SalesInvoice*) changes when it is posted.
    ("d365", "invoice"): (d365.FREE_TEXT_INVOICES.key, d365.FREE_TEXT_INVOICE_LINES.key, d365.INVOICES.key,
                          d365.INVOICE_LINES.key),
    ("kantata", "workspace"): (kantata.PROJECTS.key,),
    ("salesforce", "opportunity"): (salesforce.OPPORTUNITIES.key,),
    ("hubspot", "deal"): (hubspot.DEALS.key,),
    ("certinia", "project"): (certinia.PROJECTS.key,),
}


def record_type_label(target_system: str, record_type: str) -> str:
    """``netsuite:invoice``: how run metadata names a kind of write."""
    return f"{target_system}:{record_type}"


def attempted_record_types(con: duckdb.DuckDBPyConnection, run_id: str) -> list[str]:
    """Kinds of write the run attempted (``netsuite:invoice`` ...), whatever the outcome.

    A failed attempt counts: a call that timed out may still have landed.
    """
    rows = con.execute("""
        SELECT DISTINCT o.target_system, o.record_type
        FROM ops.outbox_attempts AS a JOIN ops.outbox AS o USING (outbox_key)
        WHERE a.run_id = ?
        ORDER BY ALL
    """, [run_id]).fetchall()
    return [record_type_label(system, record) for system, record in rows]


def entities_to_read_back(record_types: Iterable[str]) -> list[str]:
    """Contract keys of the raw tables that writes of ``record_types`` landed in (sorted)."""
    wanted: set[str] = set()
    for label in record_types:
        system, _, record = label.partition(":")
        try:
            wanted.update(WRITTEN_ENTITIES[(system, record)])
        except KeyError:
            raise ValueError(f"no raw entities known for writes of {label!r}: add them to WRITTEN_ENTITIES") from None
    return sorted(wanted)
