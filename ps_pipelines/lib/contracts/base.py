"""The shape every ingested entity shares: a pandera schema over flattened source columns.

Raw tables keep the platform's own field names (lower-cased, nested objects joined with
``_``), the way Fivetran-style raw layers do, so a source column can always be traced back
to the API field it came from. Renaming happens once, in dbt staging.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandera.pandas as pa

Record = dict[str, Any]


def flatten_record(record: Mapping[str, Any], prefix: str = "") -> Record:
    """Lower-case keys and join nested objects with ``_`` (lists stay as values).

    Salesforce's ``attributes``, NetSuite's ``links`` and Workday's ``href`` are transport
    detail, not data, so they are dropped.
    """
    flat: Record = {}
    for key, value in record.items():
        if key in ("attributes", "links", "href"):
            continue
        name = f"{prefix}{key.lower()}"
        if isinstance(value, Mapping):
            flat.update(flatten_record(value, prefix=f"{name}_"))
        else:
            flat[name] = value
    return flat


@dataclass(frozen=True)
class EntityContract:
    """One source entity: where its identity and change field live, and what a valid row is.

    ``source_object`` is the platform's name for the entity (SObject, API path, SuiteQL
    table or RaaS report); ``source_fields`` is the field list a query API selects, in the
    platform's own spelling. ``change_column`` is the platform's modification timestamp used as the incremental
    high-water mark; ``None`` means the API offers no change filter and every run takes a
    full snapshot (rows whose payload did not change are not rewritten).
    """

    platform: str
    entity: str
    id_columns: tuple[str, ...]
    change_column: str | None
    schema: pa.DataFrameSchema
    description: str
    source_object: str
    source_fields: tuple[str, ...] = ()
    # A child entity (e.g. invoice lines) has no change field of its own: it is read for
    # the parent rows that changed, and rows missing under a re-read parent are deletions.
    parent_entity: str | None = None
    parent_key_column: str | None = None
    normalize: Callable[[Record], Record] = field(default=flatten_record)
    # Fields the platform documents and sends that the pipeline does not load (flattened
    # names): kept in the raw payload, and not reported as schema drift.
    ignored_fields: tuple[str, ...] = ()
    # A query API's condition (in its own language, e.g. SOQL) that selects the entity's rows
    # among the object's: Certinia's resources are the Contacts flagged as resources.
    source_filter: str | None = None

    @property
    def key(self) -> str:
        return f"{self.platform}__{self.entity}"

    @property
    def raw_table(self) -> str:
        return f"raw_{self.platform}.{self.entity}"

    @property
    def columns(self) -> list[str]:
        return list(self.schema.columns)

    def column_description(self, name: str) -> str:
        """What the column means (the contract's ``Column(description=...)``), then its role in
        loading (primary key, high-water mark, parent key) and whether it is required."""
        column = self.schema.columns[name]
        roles = []
        if name in self.id_columns:
            roles.append("Primary key (the source id)" if len(self.id_columns) == 1
                         else f"Part of the primary key ({', '.join(self.id_columns)})")
        if name == self.change_column:
            roles.append("High-water mark of incremental loads")
        if name == self.parent_key_column:
            roles.append(f"Key of the parent {self.parent_entity} row")
        roles.append("Nullable" if column.nullable else "Required")
        meaning = (column.description or "").strip()
        return " ".join(part for part in [meaning, ". ".join(roles) + "."] if part)

    def undescribed_columns(self) -> list[str]:
        """Columns whose contract gives no meaning (their description would say only their role)."""
        return [name for name, column in self.schema.columns.items() if not (column.description or "").strip()]

    def source_id(self, row: Mapping[str, Any]) -> str:
        """Stable id of a flattened row; composite keys are joined with ``|``."""
        return "|".join(str(row.get(column)) for column in self.id_columns)
