"""``ps-pipelines run`` end to end: one run leaves the platforms and the published marts in
agreement, and a second run on the same sandbox posts nothing and changes no mart.

The figures are recomputed from the sandbox's NetSuite API with code of its own (not the
dbt models'), the way a finance auditor would check them.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from ps_pipelines.lib.sources import NetSuiteClient
from ps_pipelines.lib.writeback.ledger_store import ledger_path_for
from ps_pipelines.runner import run_main_job
from ps_pipelines.transform.project import dbt_var
from ps_sandbox.context import DEFAULT_CREDENTIALS
from tests.conftest import TEST_SCALE, TEST_SEED, RunningSandbox

CENT = Decimal("0.01")
PERIOD = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")
LEDGER_ROWS = "SELECT outbox_key, state, version, updated_at FROM ops.outbox ORDER BY outbox_key"


@dataclass(frozen=True)
class ErpInvoice:
    invoice_id: str
    external_id: str
    job_id: str | None
    currency_id: str
    invoice_date: date
    memo: str

    @property
    def billing_period(self) -> str:
        """The month an invoice bills (DECISIONLOG.md): the YYYY-MM closing our external ids,
        else a YYYY-MM in the memo, else the month before the invoice date (billed in arrears)."""
        if self.external_id.startswith("psp:inv:"):
            return self.external_id[-7:]
        found = PERIOD.search(self.memo)
        if found:
            return found.group(0)
        year, month = self.invoice_date.year, self.invoice_date.month - 1
        return f"{year - 1}-12" if month == 0 else f"{year}-{month:02d}"


def erp_invoices(netsuite: NetSuiteClient) -> tuple[dict[str, ErpInvoice], dict[str, list[dict]]]:
    """Every live invoice and its lines, straight from SuiteQL."""
    headers = [row for page in netsuite.suiteql(
        "SELECT id, externalid, job, currency, TO_CHAR(trandate, 'YYYY-MM-DD') AS trandate, memo FROM transaction "
        "WHERE type = 'CustInvc'")
        for row in page]
    invoices = {str(h["id"]): ErpInvoice(str(h["id"]), h.get("externalid") or "", h.get("job"),
                                         str(h["currency"]), date.fromisoformat(str(h["trandate"])[:10]),
                                         h.get("memo") or "") for h in headers}
    lines: dict[str, list[dict]] = defaultdict(list)
    for page in netsuite.suiteql("SELECT transaction, foreignamount, custcol_ps_line_key FROM transactionline "
                                 "WHERE mainline = 'F'"):
        for line in page:
            if str(line["transaction"]) in invoices:
                lines[str(line["transaction"])].append(line)
    return invoices, lines


def published(analytics: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(analytics), read_only=True) as con:
        return con.execute(sql).fetchall()


def mart_digest(analytics: Path) -> dict[str, str]:
    """A fingerprint of every published table's content (rows in any order)."""
    tables = [name for (name,) in published(
        analytics, "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'marts' ORDER BY 1")]
    digest = {}
    for table in tables:
        [(rows, fingerprint)] = published(analytics, f"""
            SELECT count(*), md5(coalesce(string_agg(row_text, '\n' ORDER BY row_text), ''))
            FROM (SELECT CAST(t AS VARCHAR) AS row_text FROM marts.{table} AS t)""")
        digest[table] = f"{rows}:{fingerprint}"
    return digest


@pytest.fixture
def main_job_home(sandbox: RunningSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # The runner points DAGSTER_HOME at its home; monkeypatch gives the worker's back afterwards.
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    return tmp_path / "home"


def test_one_run_converges_the_marts_on_the_erp_and_a_second_run_changes_nothing(
    sandbox: RunningSandbox, main_job_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = dict(home=main_job_home, scale=TEST_SCALE, seed=TEST_SEED, sandbox_url=sandbox.url)
    assert run_main_job(**run) == 0
    assert_calm(capsys.readouterr().out)
    analytics, warehouse = main_job_home / "analytics.duckdb", main_job_home / "warehouse.duckdb"
    netsuite = NetSuiteClient(sandbox.url, **DEFAULT_CREDENTIALS["netsuite"])
    invoices, lines = erp_invoices(netsuite)
    on_erp = {line.get("custcol_ps_line_key") for rows in lines.values() for line in rows} - {None, ""}

    # Every line the outbound model wants on a valid invoice is in NetSuite: nothing waits for
    # a later run, including invoices of projects this very run activated.
    with duckdb.connect(str(warehouse), read_only=True) as con:
        wanted = con.execute("SELECT line_external_id FROM outbound.erp_billing_transactions "
                             "WHERE is_invoice_valid").fetchall()
        mirrored = con.execute(LEDGER_ROWS).fetchall()
    with duckdb.connect(str(ledger_path_for(warehouse)), read_only=True) as con:
        waiting = con.execute("SELECT outbox_key, last_error FROM ops.outbox WHERE flow = 'billing' "
                              "AND state <> 'posted' AND regexp_matches(last_error, 'erp_(project|customer)')"
                              ).fetchall()
        ledger = con.execute(LEDGER_ROWS).fetchall()
    assert wanted and {key for (key,) in wanted} <= on_erp
    assert waiting == [], "invoices held back for an ERP project created in the same run"
    # The ledger is its own file; the warehouse holds its mirror, as of the last posting.
    assert ledger and mirrored == ledger

    # The published invoice lines are NetSuite's, all of them.
    [(published_lines,)] = published(analytics, "SELECT count(*) FROM marts.fct_invoice_lines WHERE NOT is_deleted")
    assert published_lines == sum(len(rows) for rows in lines.values())

    # Billed per project and month, recomputed from the API, equals kpi_realization to the cent
    # (project-months whose invoices are all in the project's billing currency: no FX involved).
    as_of = date.fromisoformat(str(dbt_var("as_of_date")))
    projects = {job: (key, currency) for key, job, currency in published(analytics, """
        SELECT p.project_key, p.erp_project_id, c.erp_currency_id
        FROM marts.dim_project p JOIN marts.dim_currency c USING (currency_code)
        WHERE p.erp_project_id IS NOT NULL""")}
    billed: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    foreign: set[tuple[str, str]] = set()
    for invoice in invoices.values():
        if invoice.job_id not in projects or invoice.invoice_date > as_of:
            continue
        project_key, billing_currency = projects[invoice.job_id]
        month = (project_key, invoice.billing_period)
        if invoice.currency_id != billing_currency:
            foreign.add(month)
        billed[month] += sum((Decimal(str(line["foreignamount"])) for line in lines[invoice.invoice_id]), Decimal(0))
    marts = {(key, month.strftime("%Y-%m")): Decimal(str(amount)) for key, month, amount in published(
        analytics, "SELECT project_key, month_start_date, billed_amount FROM marts.kpi_realization")}
    compared = {month: amount.quantize(CENT) for month, amount in billed.items() if month not in foreign}
    assert len(compared) >= 10
    assert {month: marts.get(month) for month in compared} == compared

    # Unbilled WIP: the billable items no NetSuite line covers (by our line key), per project.
    items = published(analytics, f"""
        SELECT project_key, line_external_id, coverage_method, billing_amount FROM marts.fct_billable_items
        WHERE service_date <= DATE '{as_of}'""")
    unbilled: dict[str, Decimal] = defaultdict(Decimal)
    for project_key, line_key, coverage, amount in items:
        manually_covered = coverage in ("manual_period", "manual_milestone")
        if line_key not in on_erp and not manually_covered and amount is not None:
            unbilled[project_key] += Decimal(str(amount))
    wip = {key: Decimal(str(amount)) for key, amount in published(
        analytics, "SELECT project_key, unbilled_amount FROM marts.kpi_unbilled_wip")}
    assert {key: wip.get(key, Decimal(0)) for key in unbilled} == dict(unbilled)
    assert sum(unbilled.values()) > 0

    # A second run on the unchanged sandbox posts nothing, rebuilds no model, republishes
    # nothing and changes no published table.
    before, publication = mart_digest(analytics), published(analytics, "FROM meta.publication")
    assert run_main_job(**run) == 0
    output = capsys.readouterr().out
    assert "pass 2" not in output, "the second run posted something and had to read it back"
    assert erp_invoices(netsuite)[0].keys() == invoices.keys()
    assert mart_digest(analytics) == before
    assert published(analytics, "FROM meta.publication") == publication
    second_runs = re.search(r"^run (.+) succeeded", output, re.M).group(1).split(", ")
    assert rebuilt_in(main_job_home, second_runs) == set(), "a model was rebuilt although nothing changed"
    netsuite.client.close()


def assert_calm(output: str) -> None:
    """A successful run shows its progress and summary in at most 60 lines; the whole stream
    (Dagster's events at DEBUG, dbt's output) is in the log file it names."""
    lines = output.splitlines()
    assert len(lines) <= 60, output
    [path] = {line.split(": ", 1)[1] for line in lines if line.startswith(("log: ", "full log: "))}
    assert lines[0] == f"log: {path}" and lines[-1] == f"full log: {path}"
    assert re.search(r"^  pass 1 \| marts_core: \d+ materialized, [\d,]+ rows \(", output, re.M), output
    written = Path(path).read_text()
    for detail in (" - DEBUG - ", "STEP_START", "OK created sql table model", "Completed successfully"):
        assert detail in written and detail not in output, detail


def rebuilt_in(home: Path, run_ids: list[str]) -> set[str]:
    """dbt models and published assets the runs materialized."""
    from dagster import DagsterEventType, DagsterInstance

    with DagsterInstance.from_config(str(home / "dagster_home")) as instance:
        keys = {record.event_log_entry.asset_materialization.asset_key.to_user_string()
                for run_id in run_ids
                for record in instance.get_records_for_run(
                    run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION).records}
    return {key for key in keys if not key.startswith(("raw/", "writeback/"))}
