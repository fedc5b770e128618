"""The protocol every source client implements, and the small helpers they share.

A source client turns an ``EntityContract`` into HTTP requests against one platform and
yields the records *exactly as the API returns them* (the platform's own field names and
nesting); flattening and validation happen downstream, in one place for all platforms.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Protocol, TypeVar, runtime_checkable

from ps_pipelines.lib.contracts.base import EntityContract

T = TypeVar("T")
Page = list[dict[str, Any]]


@runtime_checkable
class SourceClient(Protocol):
    platform: str

    def extract(
        self, contract: EntityContract, *, since: datetime | None, ids: Sequence[str] | None = None
    ) -> Iterator[Page]:
        """Pages of raw records. With ``since`` (an inclusive lower bound that already includes
        the caller's overlap window) only records changed since then, change field ascending;
        ``None`` reads everything. ``ids`` restricts the read to those records (for a child
        entity: to the children of those parent ids)."""
        ...

    def deleted(self, contract: EntityContract, *, since: datetime) -> Iterator[tuple[str, datetime]]:
        """Hard deletes ``(source id, deleted at)`` since ``since``; nothing where the API has
        no delete feed."""
        ...

    def stats(self) -> dict[str, int]:
        """Counters for run metadata: at least ``requests``, ``retries`` and ``throttled``."""
        ...


@dataclass(frozen=True)
class FieldDrift:
    """A contract against the fields the platform says an object has (its describe).

    ``missing``: contract fields the object lacks (a query naming them would be refused);
    ``unknown``: the tenant's custom fields the contract does not read (an admin added or
    renamed one); ``unread``: how many of the platform's standard fields the contract skips
    (normal: contracts read what the pipeline needs).
    """

    sobject: str
    missing: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()
    unread: int = 0


class MissingFieldsError(RuntimeError):
    """The platform's object lacks fields the contract reads: the contract (or the tenant's
    customization) is wrong, and no query can succeed until one of them is fixed."""

    def __init__(self, platform: str, contract_key: str, drift: FieldDrift) -> None:
        self.drift = drift
        super().__init__(
            f"{platform} {drift.sobject} has no field(s) {', '.join(drift.missing)} that contract "
            f"{contract_key} reads (checked against the object's describe); fix the contract's field "
            "names or create the fields in the tenant")


@runtime_checkable
class DescribesFields(Protocol):
    """A source client that can compare a contract with the platform's own field list."""

    def field_drift(self, contract: EntityContract) -> FieldDrift: ...


def as_utc(moment: datetime) -> datetime:
    """An aware UTC datetime (a naive one is taken to be UTC already)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def parse_timestamp(text: str) -> datetime:
    """A platform timestamp or date as an aware UTC datetime.

    Covers ``2026-10-01T12:34:56.000+0000`` (Salesforce), ``...+00:00`` (Kantata, Workday),
    ``...Z`` (NetSuite) and bare dates. Raises ``ValueError`` for anything else.
    """
    text = text.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    if len(text) == 10:
        return datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
    return as_utc(datetime.fromisoformat(text))


def chunked(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def source_field(contract: EntityContract, column: str) -> str:
    """The platform's spelling of a flattened (lower-cased) column, e.g. ``SystemModstamp``."""
    for name in contract.source_fields:
        if name.lower() == column:
            return name
    return column
