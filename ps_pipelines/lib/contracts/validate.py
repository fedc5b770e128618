"""Validate a batch of source records against its contract, splitting good rows from rejects.

Types are coerced here, column by column and vectorised, before pandera sees the frame:
pandera's own coercion reports a failed cast slowly (seconds per 10k rows) and then cannot
evaluate range checks on the still-mixed column, so a retyped field would hide other
failures. Every unparseable value becomes a reject naming the column, rule and value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pandera.pandas as pa

from ps_pipelines.lib.contracts.base import EntityContract, Record

_TRUE = {True, "true", "True", "TRUE", "T", "1"}
_FALSE = {False, "false", "False", "FALSE", "F", "0"}


@dataclass
class Reject:
    """One row that broke its contract; ``rules`` lists every failure found on it."""

    source_id: str
    rules: list[str]
    record: Record

    @property
    def reason(self) -> str:
        return "; ".join(self.rules)


@dataclass
class ValidatedBatch:
    valid: pd.DataFrame
    valid_records: list[Record]
    rejects: list[Reject] = field(default_factory=list)
    unexpected_columns: set[str] = field(default_factory=set)


def _coerce_bool(value: Any) -> Any:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return pd.NA
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    return _UNPARSEABLE


_UNPARSEABLE = object()


def _coerce_column(series: pd.Series, dtype: str) -> tuple[pd.Series, pd.Series]:
    """Return the coerced column and a mask of values that were present but unparseable."""
    present = series.notna()
    if dtype == "float64":
        coerced = pd.to_numeric(series, errors="coerce")
    elif dtype.startswith("datetime64[ns, "):
        coerced = pd.to_datetime(series, errors="coerce", utc=True, format="ISO8601")
    elif dtype.startswith("datetime64"):
        coerced = pd.to_datetime(series, errors="coerce", format="ISO8601")
        # A calendar date keeps its local day; drop any time-zone so days never shift.
        if isinstance(coerced.dtype, pd.DatetimeTZDtype):
            coerced = coerced.dt.tz_localize(None)
    elif dtype == "boolean":
        mapped = series.map(_coerce_bool)
        bad = mapped.map(lambda v: v is _UNPARSEABLE)
        return mapped.where(~bad, pd.NA).astype("boolean"), bad & present
    elif dtype == "str":
        bad = series.map(lambda v: isinstance(v, dict | list))
        coerced = series.where(~present, series.astype(str)).where(present, None)
        return coerced.where(~bad, None), bad
    else:
        return series, pd.Series(False, index=series.index)
    return coerced, present & coerced.isna()


def _failure_rule(column: str, check: str, value: Any) -> str:
    return f"{column}: {check} (value={value!r})"


def validate_records(contract: EntityContract, raw_records: Sequence[Record]) -> ValidatedBatch:
    """Normalize, coerce and validate ``raw_records``; never raises on bad data."""
    flat = [contract.normalize(record) for record in raw_records]
    columns = contract.columns
    unexpected = {key for row in flat for key in row} - set(columns) - set(contract.ignored_fields)
    # ``prefix_*`` ignores every field of an object the connector folded into the record.
    prefixes = tuple(name[:-1] for name in contract.ignored_fields if name.endswith("*"))
    unexpected = {key for key in unexpected if not key.startswith(prefixes)} if prefixes else unexpected
    frame = pd.DataFrame.from_records(flat, columns=columns) if flat else pd.DataFrame(columns=columns)
    rules: dict[int, list[str]] = {}

    for name, column in contract.schema.columns.items():
        coerced, bad = _coerce_column(frame[name], str(column.dtype))
        for position in bad[bad].index:
            rules.setdefault(position, []).append(
                _failure_rule(name, f"not a valid {column.dtype}", frame.at[position, name])
            )
        frame[name] = coerced

    try:
        contract.schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as errors:
        for case in errors.failure_cases.itertuples(index=False):
            if case.index is None or pd.isna(case.index):
                continue  # column-level cases repeat row-level ones already recorded
            rules.setdefault(int(case.index), []).append(_failure_rule(case.column, case.check, case.failure_case))

    bad_positions = sorted(rules)
    rejects = [
        Reject(source_id=contract.source_id(flat[pos]), rules=rules[pos], record=raw_records[pos])
        for pos in bad_positions
    ]
    good_mask = ~frame.index.isin(bad_positions)
    valid = frame[good_mask].reset_index(drop=True)
    valid_records = [raw_records[pos] for pos in range(len(raw_records)) if pos not in rules]
    return ValidatedBatch(valid=valid, valid_records=valid_records, rejects=rejects, unexpected_columns=unexpected)
