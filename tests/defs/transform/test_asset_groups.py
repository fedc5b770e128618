"""The Dagster asset groups form a graph that runs one way.

The UI's lineage collapsed by group draws an edge from group A to group B when an asset of B
reads one of A. A cycle there (marts -> intermediate -> marts, or staging -> outbound ->
writeback -> staging) makes that picture run backwards, so the groups must sort topologically.
"""

from __future__ import annotations

from collections.abc import Mapping
from graphlib import CycleError, TopologicalSorter
from itertools import pairwise

import pytest
from dagster import AssetKey
from dagster._core.definitions.assets.graph.base_asset_graph import BaseAssetGraph

from ps_pipelines.definitions import defs as load_defs

GroupEdges = Mapping[tuple[str, str], tuple[AssetKey, AssetKey]]


def group_edges(graph: BaseAssetGraph) -> dict[tuple[str, str], tuple[AssetKey, AssetKey]]:
    """(upstream group, downstream group) -> one asset edge behind it (parent, child)."""
    edges: dict[tuple[str, str], tuple[AssetKey, AssetKey]] = {}
    for key in sorted(graph.get_all_asset_keys()):
        group = graph.get(key).group_name
        for parent in sorted(graph.get(key).parent_keys):
            parent_group = graph.get(parent).group_name
            if parent_group != group:
                edges.setdefault((parent_group, group), (parent, key))
    return edges


def group_order(edges: GroupEdges) -> list[str]:
    """The groups upstream first; a cycle fails naming each of its group edges with an asset edge."""
    sorter = TopologicalSorter[str]()
    for upstream, downstream in edges:
        sorter.add(downstream, upstream)
    try:
        return list(sorter.static_order())
    except CycleError as error:
        cycle = error.args[1]  # [g0, g1, ..., g0], each upstream of the next
        hops = list(pairwise(cycle))
        named = "; ".join(f"{up} -> {down} ({edges[(up, down)][0].to_user_string()} -> "
                          f"{edges[(up, down)][1].to_user_string()})" for up, down in hops)
        raise AssertionError(f"the asset groups form a cycle: {named}") from error


def test_group_order_names_the_asset_edges_of_a_cycle() -> None:
    x, y, z = AssetKey(["one", "x"]), AssetKey(["two", "y"]), AssetKey(["three", "z"])
    assert group_order({("one", "two"): (x, y)}) == ["one", "two"]
    with pytest.raises(AssertionError) as failure:
        group_order({("one", "two"): (x, y), ("two", "three"): (y, z), ("three", "one"): (z, x)})
    for edge in ("one -> two (one/x -> two/y)", "two -> three (two/y -> three/z)", "three -> one (three/z -> one/x)"):
        assert edge in str(failure.value)


def test_the_asset_groups_have_no_cycle_and_run_from_raw_to_publication() -> None:
    graph = load_defs().resolve_asset_graph()
    order = group_order(group_edges(graph))
    assert order.index("staging") < order.index("intermediate") < order.index("marts_core")
    assert order.index("marts_core") < order.index("project_activation") < order.index("billing")
    assert order.index("billing") < min(order.index("marts_kpi"), order.index("marts_traceability"))
    assert order.index("analytics") > max(order.index("marts_kpi"), order.index("marts_traceability"))
