"""Which assets must be rebuilt: the ones whose inputs' data changed since they were last built.

Dagster records, on every materialization, its code version and the data version of each
input it read (``dagster/input_data_version/<key>``). An asset is up to date when it was
materialized before, with the code it has now, from inputs whose data versions are still the
current ones. Raw tables and postings report data versions that move only when their data
does, and dbt models derive theirs from code and inputs, so a rerun over unchanged sources
finds every model up to date and rebuilds nothing.

Dagster's own stale-status resolver needs internal loading contexts; the rule is simple
enough to apply here from the event log's public records.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from dagster import AssetKey, DagsterInstance

CODE_VERSION_TAG = "dagster/code_version"
DATA_VERSION_TAG = "dagster/data_version"
INPUT_DATA_VERSION_TAG = "dagster/input_data_version/"


class LatestVersions:
    """The latest materialization's tags per asset, read once per key."""

    def __init__(self, instance: DagsterInstance) -> None:
        self.instance = instance
        self._tags: dict[AssetKey, Mapping[str, str] | None] = {}

    def tags(self, key: AssetKey) -> Mapping[str, str] | None:
        if key not in self._tags:
            event = self.instance.get_latest_materialization_event(key)
            materialization = event.asset_materialization if event else None
            self._tags[key] = dict(materialization.tags or {}) if materialization else None
        return self._tags[key]

    def data_version(self, key: AssetKey) -> str | None:
        tags = self.tags(key)
        return tags.get(DATA_VERSION_TAG) if tags else None


def why_stale(
    key: AssetKey,
    parents: Iterable[AssetKey],
    code_version: str | None,
    versions: LatestVersions,
    rebuilt: set[AssetKey],
) -> str | None:
    """Why ``key`` must be rebuilt, or None when it is up to date. ``rebuilt``: assets that
    will be rebuilt before it (their new data version is not known yet)."""
    tags = versions.tags(key)
    if tags is None:
        return "never built"
    if code_version is not None and tags.get(CODE_VERSION_TAG) != code_version:
        return "its code changed"
    for parent in parents:
        if parent in rebuilt:
            return f"{parent.to_user_string()} is rebuilt"
        recorded = tags.get(INPUT_DATA_VERSION_TAG + parent.to_user_string())
        if recorded is None or recorded != versions.data_version(parent):
            return f"{parent.to_user_string()} changed"
    return None


def stale_assets(
    instance: DagsterInstance,
    keys: Iterable[AssetKey],
    parents_by_key: Mapping[AssetKey, Iterable[AssetKey]],
    code_versions: Mapping[AssetKey, str | None],
) -> dict[AssetKey, str]:
    """The assets of ``keys`` to rebuild, each with its reason (``keys`` in dependency order
    or not: a key rebuilt makes the keys below it within ``keys`` stale too)."""
    wanted = set(keys)
    versions = LatestVersions(instance)
    stale: dict[AssetKey, str] = {}
    for key in topological_order(wanted, parents_by_key):
        reason = why_stale(key, parents_by_key.get(key, ()), code_versions.get(key), versions, set(stale))
        if reason is not None:
            stale[key] = reason
    return stale


def topological_order(keys: set[AssetKey], parents_by_key: Mapping[AssetKey, Iterable[AssetKey]]) -> list[AssetKey]:
    """``keys`` parents first (by name among equals, so plans are stable)."""
    ordered: list[AssetKey] = []
    seen: set[AssetKey] = set()

    def visit(key: AssetKey) -> None:
        if key in seen:
            return
        seen.add(key)
        for parent in parents_by_key.get(key, ()):
            if parent in keys:
                visit(parent)
        ordered.append(key)

    for key in sorted(keys, key=lambda k: k.to_user_string()):
        visit(key)
    return ordered
