"""Column builders shared by every platform's contracts, so a rule is written once."""

from __future__ import annotations

from collections.abc import Iterable

import pandera.pandas as pa

CURRENCY_CODE = r"^[A-Z]{3}$"
EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


def text(required: bool = False, *, isin: Iterable[str] | None = None, regex: str | None = None,
         description: str | None = None) -> pa.Column:
    checks = []
    if isin is not None:
        checks.append(pa.Check.isin(list(isin)))
    if regex is not None:
        checks.append(pa.Check.str_matches(regex))
    if required:
        checks.append(pa.Check.str_length(min_value=1))
    return pa.Column(str, checks=checks, nullable=not required, coerce=True, required=required,
                     description=description)


def identifier(description: str | None = None) -> pa.Column:
    return text(required=True, description=description)


def currency(required: bool = True, *, description: str | None = None) -> pa.Column:
    return text(required=required, regex=CURRENCY_CODE, description=description)


def timestamp(required: bool = False, *, description: str | None = None) -> pa.Column:
    return pa.Column("datetime64[ns, UTC]", nullable=not required, coerce=True, required=required,
                     description=description)


def date(required: bool = False, *, description: str | None = None) -> pa.Column:
    # Dates stay calendar dates (no timezone): a work date is the same day everywhere.
    return pa.Column("datetime64[ns]", nullable=not required, coerce=True, required=required,
                     description=description)


def number(required: bool = False, *, min_value: float | None = None, max_value: float | None = None,
           description: str | None = None) -> pa.Column:
    checks = []
    if min_value is not None:
        checks.append(pa.Check.ge(min_value))
    if max_value is not None:
        checks.append(pa.Check.le(max_value))
    return pa.Column(float, checks=checks, nullable=not required, coerce=True, required=required,
                     description=description)


def flag(required: bool = False, *, description: str | None = None) -> pa.Column:
    return pa.Column("boolean", nullable=not required, coerce=True, required=required, description=description)


def json_list(required: bool = False, *, description: str | None = None) -> pa.Column:
    """A nested list kept whole (e.g. a rate card's rates); dbt unnests it."""
    check = pa.Check(
        lambda values: values.map(lambda v: isinstance(v, list) and len(v) > 0),
        element_wise=False,
        name="non_empty_list",
        ignore_na=True,
    )
    return pa.Column(object, checks=[check], nullable=not required, required=required, description=description)


def schema(name: str, columns: dict[str, pa.Column]) -> pa.DataFrameSchema:
    # strict=False: a field the platform adds later (schema drift) must not fail the load;
    # it is kept in the raw payload and surfaced by the drift report instead.
    return pa.DataFrameSchema(columns, name=name, strict=False, coerce=True)
