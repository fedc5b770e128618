"""Pandera contracts every outbound payload must pass before any call is made.

Each rule has a short name (``erp_customer``, ``amount_positive``, ``period_open`` ...); a
failure is reported as ``<rule>: <detail>`` against the record it concerns (an invoice by its
external id, a deal by its opportunity id), and that record goes to the exception queue
(ledger state ``invalid``) instead of the target system.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pandas as pd
import pandera.pandas as pa

from ps_pipelines.lib.contracts.salesforce import BILLING_MODELS

# ISO 4217 minor units where they are not 2 (a small table: extend it when a firm bills in more).
MINOR_UNITS: dict[str, int] = {"JPY": 0, "KRW": 0, "CLP": 0, "ISK": 0, "VND": 0, "HUF": 2,
                               "BHD": 3, "JOD": 3, "KWD": 3, "OMR": 3, "TND": 3}
DEFAULT_MINOR_UNIT = 2
_EPSILON = 1e-9

Reasons = dict[str, list[str]]  # record id -> ["rule: detail", ...]


def minor_unit(currency_code: str | None) -> int:
    return MINOR_UNITS.get(str(currency_code or "").upper(), DEFAULT_MINOR_UNIT)


def exact_decimal(value: Decimal | float | int | str) -> Decimal:
    """The decimal a number stands for: a float by its 15 significant digits (DBL_DIG).

    The warehouse reads doubles the same way (dbt macro ps_exact_from_double), so a float
    such as 2.675, stored as 2.67499999999999982..., is 2.675 on both sides of a payload.
    """
    if isinstance(value, float):
        return Decimal(f"{value:.15g}")
    return value if isinstance(value, Decimal) else Decimal(str(value))


def round_money(value: Decimal | float | int | str, currency_code: str | None) -> Decimal:
    """Money rounded once to the currency's minor unit, half away from zero, on the exact
    decimal: the rule the dbt money macros apply (DECISIONLOG.md, "Money and currency"), so
    SQL and Python agree to the cent. Python's round() on a float would not (round(2.675, 2)
    is 2.67, round(0.5) is 0)."""
    quantum = Decimal(1).scaleb(-minor_unit(currency_code))
    return exact_decimal(value).quantize(quantum, rounding=ROUND_HALF_UP)


def _rule(name: str, test: Callable[[pd.Series], pd.Series]) -> pa.Check:
    return pa.Check(test, name=name, ignore_na=True)


def _wide(name: str, test: Callable[[pd.DataFrame], pd.Series]) -> pa.Check:
    return pa.Check(test, name=name)


def _text(required: bool = True, *checks: pa.Check) -> pa.Column:
    return pa.Column(str, checks=list(checks), nullable=not required, required=True, coerce=False)


def _number(*checks: pa.Check) -> pa.Column:
    return pa.Column(float, checks=list(checks), nullable=False, required=True, coerce=True)


def _is_rounded(values: pd.Series, units: pd.Series) -> pd.Series:
    scaled = values * np.power(10.0, units)
    return (scaled - scaled.round()).abs() < 1e-6


def _units(frame: pd.DataFrame) -> pd.Series:
    return frame["currency_code"].map(minor_unit)


def _per_invoice(frame: pd.DataFrame, column: str) -> pd.Series:
    # Distinct non-null values per invoice (a missing value is the required-field rule's to report).
    return frame.groupby("invoice_external_id", dropna=False)[column].transform("nunique").clip(lower=1)


def _header_total_matches(frame: pd.DataFrame) -> pd.Series:
    lines = frame.groupby("invoice_external_id", dropna=False)["amount"].transform("sum")
    return (frame["invoice_amount"] - lines).abs() < 10.0 ** -(_units(frame) + 2)


def _line_total_matches(frame: pd.DataFrame) -> pd.Series:
    # NetSuite refuses a line whose amount is not quantity x rate to one minor unit.
    return (frame["amount"] - frame["quantity"] * frame["unit_rate"]).abs() <= 10.0 ** -_units(frame) + _EPSILON


def _period_open(closed_through: date | None) -> Callable[[pd.DataFrame], pd.Series]:
    def check(frame: pd.DataFrame) -> pd.Series:
        if closed_through is None:
            return pd.Series(True, index=frame.index)
        days = pd.to_datetime(frame["invoice_date"], errors="coerce")
        return days.isna() | (days > pd.Timestamp(closed_through))

    return check


# Column -> rule when a required value is missing.
INVOICE_REQUIRED = {
    "invoice_external_id": "external_id", "line_external_id": "line_external_id",
    "erp_customer_id": "erp_customer", "erp_project_id": "erp_project", "erp_subsidiary_id": "legal_entity",
    "erp_currency_id": "currency", "currency_code": "currency", "billing_model": "billing_model",
    "invoice_date": "invoice_date", "item_name": "item", "quantity": "quantity", "unit_rate": "rate",
    "amount": "amount_positive", "invoice_amount": "header_total",
}


def invoice_schema(closed_through: date | None = None) -> pa.DataFrameSchema:
    """One row per invoice line, header fields repeated (the shape of erp_billing_transactions)."""
    return pa.DataFrameSchema(
        {
            "invoice_external_id": _text(True, _rule("external_id", lambda s: s.str.startswith("psp:inv:"))),
            "line_external_id": _text(True),
            "erp_customer_id": _text(True),
            "erp_project_id": _text(True),
            "erp_subsidiary_id": _text(True),
            "erp_currency_id": _text(True),
            "currency_code": _text(True, _rule("currency", lambda s: s.str.fullmatch(r"[A-Z]{3}"))),
            "billing_model": _text(True, _rule("billing_model", lambda s: s.isin(BILLING_MODELS))),
            "invoice_date": _text(True),
            "item_name": _text(True, _rule("item", lambda s: s.str.len() > 0)),
            "quantity": _number(_rule("quantity", lambda s: s > 0)),
            "unit_rate": _number(_rule("rate", lambda s: s > 0)),
            "amount": _number(_rule("amount_positive", lambda s: s > 0)),
            "invoice_amount": _number(_rule("amount_positive", lambda s: s > 0)),
        },
        checks=[
            _wide("amount_rounding", lambda f: _is_rounded(f["amount"], _units(f))
                  & _is_rounded(f["invoice_amount"], _units(f))),
            _wide("line_total", _line_total_matches),
            _wide("header_total", _header_total_matches),
            _wide("legal_entity_consistent", lambda f: _per_invoice(f, "erp_subsidiary_id") == 1),
            _wide("currency_consistent", lambda f: (_per_invoice(f, "currency_code") == 1)
                  & (_per_invoice(f, "erp_currency_id") == 1)),
            _wide("header_consistent", lambda f: (_per_invoice(f, "erp_customer_id") == 1)
                  & (_per_invoice(f, "erp_project_id") == 1) & (_per_invoice(f, "invoice_date") == 1)),
            _wide("period_open", _period_open(closed_through)),
            _wide("model_validation", lambda f: f["unexplained_errors"].isna()),
        ],
        name="writeback.invoice_lines",
        strict=False,
    )


_INVOICE_DETAILS: dict[str, Callable[[pd.Series], str]] = {
    "amount_positive": lambda r: f"line {r['line_external_id']} amount {r['amount']}",
    "amount_rounding": lambda r: f"line {r['line_external_id']} amount {r['amount']} is not rounded to "
                                 f"{minor_unit(r['currency_code'])} decimals for {r['currency_code']}",
    "line_total": lambda r: f"line {r['line_external_id']} amount {r['amount']} != quantity {r['quantity']} x "
                            f"rate {r['unit_rate']}",
    "header_total": lambda r: f"header {r['invoice_amount']} differs from the sum of the lines",
    "legal_entity_consistent": lambda r: "lines belong to more than one subsidiary",
    "currency_consistent": lambda r: "lines are in more than one currency",
    "header_consistent": lambda r: "lines disagree on customer, project or invoice date",
    "period_open": lambda r: f"invoice date {r['invoice_date']} is in a closed period",
    "model_validation": lambda r: f"line {r['line_external_id']}: {r['unexplained_errors']}",
    "quantity": lambda r: f"line {r['line_external_id']} quantity {r['quantity']}",
    "rate": lambda r: f"line {r['line_external_id']} rate {r['unit_rate']}",
    "billing_model": lambda r: f"billing model {r['billing_model']!r} is not one of {', '.join(BILLING_MODELS)}",
}


def check_invoice_lines(lines: pd.DataFrame, closed_through: date | None = None) -> Reasons:
    """``invoice external id -> reasons`` for every invoice with a failing line or header.

    A hold the outbound model explains (``validation_detail``: a quarantined record, a billing
    limit, a rate-card anomaly) is reported in its own words, ``<rule>: <detail>``, naming the
    line's record; the ``model_validation`` rule then only reports what is left unexplained.
    """
    lines = _with_detail(lines)
    reasons = _reasons(invoice_schema(closed_through), lines, "invoice_external_id", INVOICE_REQUIRED,
                       _INVOICE_DETAILS, abridge=False)
    return _merge_details(reasons, lines, "invoice_external_id")


# -- project activation --------------------------------------------------------------------------
ACTIVATION_REQUIRED = {
    "opportunity_id": "opportunity", "customer_external_id": "account", "company_name": "account",
    "project_name": "project_name", "erp_subsidiary_id": "legal_entity", "erp_currency_id": "currency",
    "currency_code": "currency", "billing_model": "billing_model", "tax_code": "tax_code",
}


def _dates_in_order(frame: pd.DataFrame) -> pd.Series:
    start = pd.to_datetime(frame["start_date"], errors="coerce")
    end = pd.to_datetime(frame["end_date"], errors="coerce")
    return start.isna() | end.isna() | (end >= start)


def activation_schema() -> pa.DataFrameSchema:
    """One row per won deal (the shape of erp_project_activation_requests)."""
    return pa.DataFrameSchema(
        {
            **{column: _text(True) for column in ACTIVATION_REQUIRED},
            "currency_code": _text(True, _rule("currency", lambda s: s.str.fullmatch(r"[A-Z]{3}"))),
            "billing_model": _text(True, _rule("billing_model", lambda s: s.isin(BILLING_MODELS))),
            "tax_code": _text(True, _rule("tax_code", lambda s: s.str.strip().str.len() > 0)),
        },
        checks=[_wide("dates", _dates_in_order)],
        name="writeback.activation_requests",
        strict=False,
    )


_ACTIVATION_DETAILS: dict[str, Callable[[pd.Series], str]] = {
    "dates": lambda r: f"end date {r['end_date']} is before start date {r['start_date']}",
}


def check_activation_requests(requests: pd.DataFrame) -> Reasons:
    """``opportunity id -> rules`` for every deal that may not be activated yet.

    The outbound model's own ``validation_errors`` (already rule names) are merged in, so a
    rule found by both is reported once; a rule the model explains (``validation_detail``, e.g.
    ``quarantined: opportunity 006... <rule>``) is reported in its words.
    """
    reasons = _reasons(activation_schema(), requests, "opportunity_id", ACTIVATION_REQUIRED, _ACTIVATION_DETAILS)
    details = requests["validation_detail"] if "validation_detail" in requests else [None] * len(requests)
    for opportunity, errors, detail in zip(requests["opportunity_id"], requests["validation_errors"], details,
                                           strict=True):
        if isinstance(errors, str) and errors.strip():
            found = reasons.setdefault(str(opportunity), [])
            explained = _detail_lines(detail)
            known = set(rule_names(found))
            found.extend(line for line in explained if line.split(":", 1)[0] not in known)
            known |= set(rule_names(explained))
            found.extend(f"{rule}: flagged by the outbound model" for rule in
                         (part.strip() for part in errors.split(",")) if rule and rule not in known)
    return reasons


def rule_names(reasons: list[str]) -> list[str]:
    """The rule names of ``rule: detail`` reasons, in order, each once."""
    return _unique([reason.split(":", 1)[0].strip() for reason in reasons])


MAX_DETAILS_PER_RULE = 3


# -- shared --------------------------------------------------------------------------------------
def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _detail_lines(detail: object) -> list[str]:
    """The ``rule: detail`` lines of an outbound ``validation_detail`` (one per line of text)."""
    if not isinstance(detail, str):
        return []
    return [line.strip() for line in detail.splitlines() if line.strip()]


def _with_detail(lines: pd.DataFrame) -> pd.DataFrame:
    """``lines`` with ``unexplained_errors``: the rules of ``validation_errors`` that
    ``validation_detail`` does not explain (null when none)."""
    lines = lines.copy()
    if "validation_detail" not in lines:
        lines["validation_detail"] = None

    def unexplained(errors: object, detail: object) -> str | None:
        if not isinstance(errors, str) or not errors.strip():
            return None
        explained = set(rule_names(_detail_lines(detail)))
        left = [rule.strip() for rule in errors.split(",") if rule.strip() and rule.strip() not in explained]
        return ", ".join(left) or None

    lines["unexplained_errors"] = [unexplained(e, d) for e, d in
                                   zip(lines["validation_errors"], lines["validation_detail"], strict=True)]
    return lines


def _merge_details(reasons: Reasons, frame: pd.DataFrame, record_column: str) -> Reasons:
    """Add each record's ``validation_detail`` lines to its reasons (abridged per rule like the rest)."""
    for record, detail in zip(frame[record_column], frame["validation_detail"], strict=True):
        explained = _detail_lines(detail)
        if explained:
            key = "<missing>" if pd.isna(record) else str(record)
            reasons[key] = reasons.get(key, []) + explained
    return {key: _abridged(_unique(values)) for key, values in reasons.items()}


def _reasons(
    schema: pa.DataFrameSchema,
    frame: pd.DataFrame,
    record_column: str,
    required: Mapping[str, str],
    details: Mapping[str, Callable[[pd.Series], str]],
    *,
    abridge: bool = True,
) -> Reasons:
    if frame.empty:
        return {}
    frame = frame.reset_index(drop=True)
    try:
        schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as errors:
        cases = errors.failure_cases
    else:
        return {}
    reasons: Reasons = {}
    for case in cases.itertuples(index=False):
        if case.index is None or pd.isna(case.index):
            # Not a row's fault but the frame's (a missing column, a wrong dtype): a bug, not data.
            raise ValueError(f"{schema.name}: {case.column} fails {case.check}")
        row = frame.loc[int(case.index)]
        if case.check == "not_nullable":
            rule, detail = required.get(case.column, case.column), f"{case.column} is missing"
        else:
            rule = str(case.check)
            detail = details[rule](row) if rule in details else f"{case.column} {case.failure_case!r}"
        record = row[record_column]
        reasons.setdefault("<missing>" if pd.isna(record) else str(record), []).append(f"{rule}: {detail}")
    return {key: _abridged(_unique(values)) if abridge else _unique(values) for key, values in reasons.items()}


def _abridged(reasons: list[str], per_rule: int = MAX_DETAILS_PER_RULE) -> list[str]:
    """At most ``per_rule`` details per rule: an invoice of 200 lines missing its ERP project
    says so in a few lines (the ledger and the run log carry this text), not 200 times."""
    by_rule: dict[str, list[str]] = {}
    for reason in reasons:
        by_rule.setdefault(reason.split(":", 1)[0], []).append(reason)
    abridged: list[str] = []
    for rule, details in by_rule.items():
        abridged += details[:per_rule]
        if len(details) > per_rule:
            abridged.append(f"{rule}: and {len(details) - per_rule} more line(s) like these")
    return abridged
