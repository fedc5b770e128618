"""Plain values out of pandas rows, shared by every ERP's payload builders."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ps_pipelines.lib.writeback.contracts import round_money

Line = dict[str, Any]  # one row of the billing lines, as plain Python values


def plain(value: Any) -> Any:
    """``None`` for pandas' missing markers, plain Python scalars otherwise (JSON-safe)."""
    if value is None or (not isinstance(value, str | list | dict) and pd.isna(value)):
        return None
    return value.item() if hasattr(value, "item") else value


def text(value: Any) -> str | None:
    value = plain(value)
    return None if value is None else str(value)


def id_ref(value: Any) -> dict[str, Any] | None:
    """A NetSuite record reference, ``{"id": ...}``."""
    value = text(value)
    return None if value is None else {"id": value}


def money(value: Any, currency: str | None) -> float | None:
    """An amount rounded once to the currency's minor unit (``round_money``, on the exact decimal).
    JSON carries a float: the one nearest to the cents, which prints as them."""
    value = plain(value)
    return None if value is None else float(round_money(value, currency))
