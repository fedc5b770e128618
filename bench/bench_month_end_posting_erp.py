"""Month-end posting to each ERP: the same N invoices posted to NetSuite and to Dynamics 365, on
one machine in one run, each at its emulator's own throttling (the sandbox's default limits).

A sandbox at ``--scale`` in a temporary home; the invoices are built on the sandbox's own
projects (NetSuite jobs; Dynamics 365 projects derived from them), with as many lines per
invoice as the generator gives its invoices (their line counts, cycled). Each ERP gets a fresh
warehouse and ledger and the poster's default settings; ``run_billing`` is timed alone. Printed
per ERP: invoices/s, lines/s, wall seconds, CPU seconds of this process (payloads, ledger,
HTTP client) and of the sandbox process (the emulator), requests and 429s; then the ratio
D365 / NetSuite. After each posting every invoice is read back: exactly one per source invoice.

NetSuite: one ``PUT .../invoice/eid:<id>`` upsert per invoice; Dynamics 365: one ``$batch``
change set per invoice (header + lines), so the request counts are alike and the difference is
the emulators' per-request work and throttling.

    .venv/bin/python bench/bench_month_end_posting_erp.py --invoices 500 --scale 0.3
"""

from __future__ import annotations

import argparse
import itertools
import os
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd
import requests

from ps_pipelines.lib.sources import NetSuiteClient
from ps_pipelines.lib.sources.d365 import D365Client
from ps_pipelines.lib.warehouse.warehouse import Warehouse
from ps_pipelines.lib.writeback import Targets, run_billing
from ps_pipelines.lib.writeback.contracts import exact_decimal, round_money
from ps_pipelines.lib.writeback.payloads import BILLING_COLUMNS, BILLING_TABLE
from ps_pipelines.local_sandbox import SandboxProcess
from ps_sandbox.context import DEFAULT_CREDENTIALS
from ps_sandbox.d365_data import billable_projects
from ps_sandbox.store import SandboxStore

PERIOD = "2026-10"


def cpu_seconds(pid: int) -> float:
    """User + system CPU of process ``pid`` (Linux ``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def line_counts(store: SandboxStore) -> list[int]:
    """Lines per generated NetSuite invoice (item lines), in id order."""
    invoices = {t["id"] for t in store.scan("netsuite", "transaction") if t.get("type") == "CustInvc"}
    counts = Counter(line["transaction"] for line in store.scan("netsuite", "transactionline")
                     if line.get("transaction") in invoices and line.get("mainline") == "F"
                     and line.get("taxline") != "T")
    return [counts[i] for i in sorted(counts)] or [3]


def erp_projects(store: SandboxStore, erp: str) -> list[dict[str, str]]:
    """(project, customer, subsidiary, currency id, currency code) of the ERP's projects."""
    if erp == "netsuite":
        codes = {row["id"]: row["symbol"] for row in store.scan("netsuite", "currency")}
        return [{"project": j["id"], "customer": j["parent"], "subsidiary": j["subsidiary"],
                 "currency_id": j["currency"], "currency": codes[j["currency"]]}
                for j in store.scan("netsuite", "job", order="id")]
    return [{"project": p["ProjectID"], "customer": c["CustomerAccount"], "subsidiary": p["dataAreaId"],
             "currency_id": c["SalesCurrencyCode"], "currency": c["SalesCurrencyCode"]}
            for p, c in billable_projects(store)]


def invoices(erp: str, projects: list[dict[str, str]], counts: list[int], n: int) -> pd.DataFrame:
    """``n`` invoices of one period, the i-th on project i (cycled) with counts[i] lines (cycled)."""
    rows: list[dict[str, Any]] = []
    for i, (project, lines) in enumerate(zip(itertools.cycle(projects), itertools.cycle(counts))):
        if i == n:
            break
        workspace = f"9{i:05d}"
        invoice = f"psp:inv:{workspace}:{project['subsidiary']}:{project['currency']}:{PERIOD}"
        for number in range(1, lines + 1):
            hours, rate = 1.0 + (i + number) % 8 * 0.25, 100.0 + (i * 7 + number) % 50
            rows.append({
                "line_external_id": f"psp:inl:time_entry:{workspace}{number:04d}", "invoice_external_id": invoice,
                "line_number": number, "source_type": "time_entry", "source_id": f"{workspace}{number}",
                "psa_project_id": workspace, "crm_opportunity_id": "006BENCH", "billing_model": "Time and Materials",
                "billing_period": PERIOD, "invoice_date": "2026-10-31", "erp_customer_id": project["customer"],
                "erp_project_id": project["project"], "erp_subsidiary_id": project["subsidiary"],
                "erp_currency_id": project["currency_id"], "currency_code": project["currency"],
                "item_name": "Professional Services - Consultant", "memo": f"Line {number}", "quantity": hours,
                "unit_rate": rate,
                "amount": float(round_money(exact_decimal(hours) * exact_decimal(rate), project["currency"])),
                "invoice_amount": None, "validation_errors": None, "validation_detail": None,
            })
    frame = pd.DataFrame(rows, columns=list(BILLING_COLUMNS))
    frame["invoice_amount"] = frame.groupby("invoice_external_id")["amount"].transform("sum")
    frame["erp_platform"] = erp
    return frame


def targets(url: str, erp: str) -> Targets:
    if erp == "netsuite":
        return Targets(netsuite=NetSuiteClient(url, **DEFAULT_CREDENTIALS["netsuite"]))
    d365 = DEFAULT_CREDENTIALS["d365"]
    return Targets(d365=D365Client(url, d365["tenant"], d365["client_id"], d365["client_secret"], login_url=url))


def held(url: str, erp: str, external_ids: list[str]) -> Counter:
    """How many ERP invoices each external id has (read back over HTTP)."""
    client = targets(url, erp)
    if erp == "netsuite":
        rows = [r for page in client.netsuite.suiteql(
            "SELECT externalid FROM transaction WHERE type = 'CustInvc' AND externalid LIKE 'psp:inv:9%'")
            for r in page]
        return Counter(r["externalid"] for r in rows if r["externalid"] in set(external_ids))
    rows = client.d365.find("FreeTextInvoiceHeaders", "ExternalInvoiceId eq 'psp:inv:9*'")
    return Counter(r["ExternalInvoiceId"] for r in rows if r["ExternalInvoiceId"] in set(external_ids))


def post(url: str, pid: int, erp: str, frame: pd.DataFrame, work: Path) -> dict[str, Any]:
    warehouse = Warehouse(work / f"{erp}.duckdb")
    client = targets(url, erp)
    with warehouse.connect() as con:
        con.execute("CREATE SCHEMA IF NOT EXISTS outbound")
        con.register("_frame", frame)
        con.execute(f"CREATE OR REPLACE TABLE {BILLING_TABLE} AS SELECT * FROM _frame")
        con.unregister("_frame")
        wall, cpu, server = time.perf_counter(), time.process_time(), cpu_seconds(pid)
        summary = run_billing(con, client, run_id=f"bench-{erp}")
        wall, cpu, server = (time.perf_counter() - wall, time.process_time() - cpu, cpu_seconds(pid) - server)
    external_ids = sorted(frame["invoice_external_id"].unique())
    counts = held(url, erp, external_ids)
    assert summary.posted == len(external_ids), summary.as_metadata()
    assert all(counts[i] == 1 for i in external_ids), f"{erp}: not one invoice per source invoice"
    return {"erp": erp, "invoices": len(external_ids), "lines": len(frame), "wall": wall, "cpu": cpu,
            "sandbox_cpu": server, "requests": summary.requests, "throttled": summary.throttled}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=500)
    parser.add_argument("--scale", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        work = Path(home)
        state = work / "sandbox.sqlite"
        with SandboxProcess(state, scale=args.scale, seed=args.seed, output=subprocess.DEVNULL) as sandbox:
            assert sandbox.process is not None
            limits = requests.get(f"{sandbox.url}/_sandbox/limits", timeout=30).json()
            targets(sandbox.url, "d365").d365.find("LegalEntities", "LegalEntityId ne ''")  # derive D365 data
            store = SandboxStore(state)
            counts = line_counts(store)
            print(f"sandbox scale {args.scale}: {len(counts)} generated invoices, "
                  f"{sum(counts) / len(counts):.1f} lines each on average; limits "
                  f"{ {k: v for k, v in limits.items() if 'netsuite' in k or 'd365' in k} }", flush=True)
            results = [post(sandbox.url, sandbox.process.pid, erp,
                            invoices(erp, erp_projects(store, erp), counts, args.invoices), work)
                       for erp in ("netsuite", "d365")]
    print(f"{'erp':9} {'invoices':>8} {'lines':>6} {'inv/s':>7} {'lines/s':>8} {'wall s':>7} {'cpu s':>6} "
          f"{'sandbox cpu s':>13} {'requests':>8} {'429s':>5}")
    for r in results:
        print(f"{r['erp']:9} {r['invoices']:8d} {r['lines']:6d} {r['invoices'] / r['wall']:7.1f} "
              f"{r['lines'] / r['wall']:8.1f} {r['wall']:7.2f} {r['cpu']:6.2f} {r['sandbox_cpu']:13.2f} "
              f"{r['requests']:8d} {r['throttled']:5d}")
    netsuite, d365 = results
    print(f"D365 / NetSuite: wall {d365['wall'] / netsuite['wall']:.2f}x, invoices/s "
          f"{(d365['invoices'] / d365['wall']) / (netsuite['invoices'] / netsuite['wall']):.2f}x, "
          f"client CPU {d365['cpu'] / netsuite['cpu']:.2f}x, sandbox CPU "
          f"{d365['sandbox_cpu'] / max(netsuite['sandbox_cpu'], 1e-9):.2f}x")


if __name__ == "__main__":
    main()
