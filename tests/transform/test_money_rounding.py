"""Money rounds once, to the cent, half away from zero, on DuckDB and on PostgreSQL alike.

The real macros (``ps_convert_amount``, ``ps_money_product``) are compiled by dbt for each
target, then evaluated over thousands of seeded random amounts, exchange rates, hours and
prices held in the warehouse's own column types (money decimal(18,2), rates and hours as
doubles). Every result must equal ``decimal.Decimal`` arithmetic on the same values rounded
with ROUND_HALF_UP (DECISIONLOG.md, "Money and currency"), so a value rounded twice (to 3
places, then 2) or rounded as a binary double shows up as a cent off.

A seeded ``random`` instead of a property-testing library: the draws are the same on every
run, so a failure names a case that can be replayed.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, localcontext
from pathlib import Path
from typing import Any

import duckdb
import pytest
from psycopg2.extras import execute_values

from ps_pipelines.lib.writeback.payloads import invoice_payload
from tests.transform.pg_server import PostgresServer, PostgresUnavailable, start_postgres
from tests.transform.test_dbt_foundation import run_dbt

SEED = 20260909
DRAWS = 4000
CENT = Decimal("0.01")
EXACT_SCALE = Decimal("1e-16")  # ps_type('exact') is decimal(38,16)
# Doubles at the edges of how DuckDB parses them (macros/money.sql) and ones whose binary
# value lies just below the decimal they stand for.
EDGE_DOUBLES = [0.1 * 3, 2.675, -2.675, 1.005, 0.9999999999999999, 99.99999999999999, 999.9999999999999,
                999999.9999999999, 999999999.9999999, 123456789012.345, 999999999999999.9, 6.134969325153374e-05,
                12345.674999999999, 1e-17, 0.0]

# What the marts compute, over a table of cases; compiled once per target.
MACRO_SQL = """
select
    case_id,
    {{ ps_convert_amount('amount', 'rate') }} as reporting,
    {{ ps_convert_amount('amount', 'rate', 'divide_by_rate') }} as functional,
    {{ ps_money_product('quantity', 'price') }} as product,
    {{ ps_exact_from_double('a_double') }} as exact_double
from money_cases
order by case_id
"""
# Both engines accept these spellings; they are the marts' money, rate and hours types.
CASES_TABLE = """
create table money_cases as
select cast(case_id as integer) as case_id,
       cast(amount as decimal(18,2)) as amount,
       cast(rate as double precision) as rate,
       cast(divide_by_rate as double precision) as divide_by_rate,
       cast(quantity as double precision) as quantity,
       cast(price as decimal(18,2)) as price,
       cast(a_double as double precision) as a_double
from money_case_text
"""


@dataclass(frozen=True)
class Case:
    case_id: int
    amount: Decimal  # money in its own currency (a credit is negative)
    rate: Decimal  # reporting units per unit, as NetSuite quotes it (6 decimals or fewer)
    divide_by_rate: Decimal  # the functional currency's rate, same day
    quantity: Decimal  # hours as Kantata records them
    price: Decimal  # a bill, cost or unit rate (money)
    a_double: float  # any double, of any magnitude, read into the exact type

    def expected(self) -> dict[str, Decimal]:
        with localcontext() as exact:
            exact.prec = 60  # wider than any product or quotient here: only quantize rounds
            return {
                "reporting": (self.amount * self.rate).quantize(CENT, ROUND_HALF_UP),
                "functional": (self.amount * self.rate / self.divide_by_rate).quantize(CENT, ROUND_HALF_UP),
                "product": (self.quantity * self.price).quantize(CENT, ROUND_HALF_UP),
                # The decimal a double stands for: its 15 significant digits, at the exact type's scale.
                "exact_double": Decimal(f"{self.a_double:.15g}").quantize(EXACT_SCALE, ROUND_HALF_UP),
            }

    def as_text(self) -> tuple[str, ...]:
        return (str(self.case_id), str(self.amount), str(self.rate), str(self.divide_by_rate), str(self.quantity),
                str(self.price), repr(self.a_double))


def _decimal(rng: random.Random, low: int, high: int, places: int) -> Decimal:
    """A uniformly drawn decimal in [low, high] with exactly ``places`` decimals."""
    scale = 10 ** places
    return Decimal(rng.randint(low * scale, high * scale)).scaleb(-places)


# Known flips: the third decimal of each product decides the cent, and a double or a second
# rounding decides it wrongly (831.25 x 1.251422 = 1040.2445375 is 1040.24, not 1040.25).
FIXED = [
    (Decimal("831.25"), Decimal("1.251422"), Decimal("1.25"), Decimal("8"), Decimal("150.00")),
    (Decimal("-831.25"), Decimal("1.251422"), Decimal("0.8"), Decimal("2.675"), Decimal("1.00")),
    (Decimal("1.00"), Decimal("2.675"), Decimal("2"), Decimal("1.005"), Decimal("1.00")),
    (Decimal("10.01"), Decimal("1"), Decimal("2"), Decimal("0.285"), Decimal("1.00")),
    (Decimal("500.05"), Decimal("0.5"), Decimal("4"), Decimal("8.345"), Decimal("-1.00")),
    # 24691.35 / 2 is exactly 12345.675; as a double it is 12345.674999999999...
    (Decimal("24691.35"), Decimal("1"), Decimal("2"), Decimal("0.1"), Decimal("150.05")),
]


def draw_cases(seed: int = SEED, draws: int = DRAWS) -> list[Case]:
    rng = random.Random(seed)
    cases = [Case(i, *values, a_double=EDGE_DOUBLES[i % len(EDGE_DOUBLES)]) for i, values in enumerate(FIXED)]
    cases += [Case(len(cases) + i, *FIXED[0], a_double=edge) for i, edge in enumerate(EDGE_DOUBLES)]
    for case_id in range(len(cases), len(cases) + draws):
        cases.append(Case(
            case_id,
            amount=_decimal(rng, -20_000, 200_000, 2),
            rate=_decimal(rng, 0, 5, rng.choice((4, 5, 6))) or Decimal("0.000001"),
            divide_by_rate=_decimal(rng, 0, 5, 6) + Decimal("0.01"),
            quantity=_decimal(rng, 0, 60, rng.choice((2, 3))),
            price=_decimal(rng, -500, 3_000, 2),
            a_double=rng.uniform(-1, 1) * 10.0 ** rng.randint(-8, 16),
        ))
    return cases


def compile_macro_sql(work_dir: Path, env: dict[str, str] | None = None) -> str:
    """MACRO_SQL as dbt compiles it for the target ``env`` selects (DuckDB by default)."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in (env or {}).items():
            patch.setenv(name, value)
        done = run_dbt(["compile", "--inline", MACRO_SQL, "--quiet", "--output", "json"],
                       work_dir / "unused.duckdb", work_dir)
    assert done.returncode == 0, f"dbt compile failed:\n{done.stdout[-4000:]}"
    return json.loads(done.stdout[done.stdout.index("{"):])["compiled"]


def mismatches(cases: list[Case], rows: list[tuple[Any, ...]]) -> list[str]:
    """Every case whose computed money differs from the exact half-up answer."""
    by_id = {case.case_id: case for case in cases}
    assert len(rows) == len(cases)
    wrong = []
    for case_id, *values in rows:
        case = by_id[case_id]
        for (name, expected), value in zip(case.expected().items(), values, strict=True):
            if value is None or Decimal(str(value)) != expected:
                wrong.append(f"{name}: {case} gave {value}, expected {expected}")
    return wrong


def _report(engine: str, cases: list[Case], wrong: list[str]) -> str:
    return f"{engine}: {len(wrong)} of {4 * len(cases)} results off; first ones:\n" + "\n".join(wrong[:15])


@pytest.fixture(scope="module")
def cases() -> list[Case]:
    return draw_cases()


def test_the_draws_are_the_hard_cases(cases: list[Case]) -> None:
    """The draws are worth something: a third of products land past the cent, and for a fair
    share of them rounding to 3 places first gives another cent than rounding once."""
    def flips(value: Decimal) -> bool:
        once = value.quantize(CENT, ROUND_HALF_UP)
        twice = value.quantize(Decimal("0.001"), ROUND_HALF_UP).quantize(CENT, ROUND_HALF_UP)
        return once != twice

    products = [case.amount * case.rate for case in cases]
    assert sum(map(flips, products)) > len(cases) // 50


def test_duckdb_rounds_money_once_half_away_from_zero(cases: list[Case], tmp_path: Path) -> None:
    compiled = compile_macro_sql(tmp_path)
    con = duckdb.connect()
    try:
        con.execute("create table money_case_text (case_id varchar, amount varchar, rate varchar, "
                    "divide_by_rate varchar, quantity varchar, price varchar, a_double varchar)")
        con.executemany("insert into money_case_text values (?, ?, ?, ?, ?, ?, ?)", [c.as_text() for c in cases])
        con.execute(CASES_TABLE)
        rows = con.execute(compiled).fetchall()
    finally:
        con.close()
    wrong = mismatches(cases, rows)
    assert not wrong, _report("duckdb", cases, wrong)


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    try:
        server = start_postgres()
    except PostgresUnavailable as why:
        if os.environ.get("PS_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL is required (PS_REQUIRE_POSTGRES=1) but unavailable: {why}")
        pytest.skip(f"no PostgreSQL server for the rounding check: {why}")
    try:
        yield server
    finally:
        server.stop()


def test_postgres_rounds_money_once_half_away_from_zero(
    cases: list[Case], postgres: PostgresServer, tmp_path: Path
) -> None:
    compiled = compile_macro_sql(tmp_path, postgres.dbt_env())
    pg = postgres.connect()
    try:
        with pg.cursor() as cursor:
            cursor.execute("create temporary table money_case_text (case_id text, amount text, rate text, "
                           "divide_by_rate text, quantity text, price text, a_double text)")
            execute_values(cursor, "insert into money_case_text values %s", [c.as_text() for c in cases])
            cursor.execute(CASES_TABLE.replace("create table", "create temporary table"))
            cursor.execute(compiled)
            rows = cursor.fetchall()
    finally:
        pg.close()
    wrong = mismatches(cases, rows)
    assert not wrong, _report("postgres", cases, wrong)


def _line(number: int, amount: float, currency: str) -> dict[str, Any]:
    return {"invoice_external_id": f"psp:inv:1:1:{currency}:2026-06",
            "line_external_id": f"psp:inl:time_entry:{number}", "erp_customer_id": "1", "erp_project_id": "1",
            "erp_subsidiary_id": "1", "erp_currency_id": "1",
            "currency_code": currency, "invoice_date": "2026-06-30", "billing_model": "Time and Materials",
            "billing_period": "2026-06", "psa_project_id": "1", "item_name": "Consulting", "memo": "",
            "quantity": 1.0, "unit_rate": amount, "amount": amount}


@pytest.mark.parametrize(("currency", "places"), [("USD", 2), ("JPY", 0)])
def test_the_payload_builder_rounds_money_like_the_warehouse(cases: list[Case], currency: str, places: int) -> None:
    """The write-back reads amounts as floats; each posted amount must be the half-up rounding
    of the decimal the float stands for, as in SQL. Every draw is cut to one place more than
    the currency has, so half a minor unit (2.675 USD, 1234.5 JPY) is common."""
    quantum, finer = Decimal(1).scaleb(-places), Decimal(1).scaleb(-places - 1)
    exact = [(case.amount * case.rate).quantize(finer, ROUND_HALF_UP) for case in cases]
    exact += [Decimal("2.675"), Decimal("1.005"), Decimal("-2.675"), Decimal("0.5"), Decimal("2.5")]
    payload = invoice_payload([_line(i, float(value), currency) for i, value in enumerate(exact)])
    posted = [Decimal(str(item["amount"])) for item in payload["item"]["items"]]
    expected = [value.quantize(quantum, ROUND_HALF_UP) for value in exact]
    wrong = [f"{value} posted as {got}, expected {want}"
             for value, got, want in zip(exact, posted, expected, strict=True) if got != want]
    assert not wrong, f"{len(wrong)} of {len(exact)} amounts off; first ones:\n" + "\n".join(wrong[:15])
