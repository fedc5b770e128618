"""Every raw ingestion asset (defined per platform under ps_pipelines/defs/) and their groups.

A module of its own, not the package's __init__: the platform modules import the factory
beside it, which would otherwise import them back.

The default estate's platforms are defined as module-level assets in the defs folder; the
other platforms' assets are built only for an estate that declares them (``estate_assets``).
"""

from collections.abc import Callable, Sequence

from dagster import AssetsDefinition

from ps_pipelines.defs.certinia.assets import build_certinia_assets
from ps_pipelines.defs.d365.assets import build_d365_assets
from ps_pipelines.defs.hubspot.assets import build_hubspot_assets
from ps_pipelines.defs.kantata import assets as kantata
from ps_pipelines.defs.netsuite import assets as netsuite
from ps_pipelines.defs.salesforce import assets as salesforce
from ps_pipelines.defs.workday import assets as workday
from ps_pipelines.estate import DEFAULT_ESTATE, PLATFORM_ROLES, Estate

ingest_assets = [*salesforce.assets, *kantata.assets, *workday.assets, *netsuite.assets]
# One group per platform, named role_platform; a job selecting them all selects whatever the
# estate declared (a group with no asset selects nothing).
PLATFORM_GROUPS = {platform: f"{role}_{platform}" for platform, role in PLATFORM_ROLES.items()}
INGEST_GROUPS = tuple(PLATFORM_GROUPS.values())
# Platforms outside the default estate: their assets are built when an estate declares them.
DECLARED_ONLY_BUILDERS: dict[str, Callable[[], list[AssetsDefinition]]] = {
    "hubspot": build_hubspot_assets,
    "certinia": build_certinia_assets,
    "d365": build_d365_assets,
}


def raw_platform(asset: AssetsDefinition) -> str | None:
    """The platform whose raw table ``asset`` ingests (keys ``raw/<platform>/<entity>``), or None
    (a multi-asset, such as the dbt models, ingests nothing)."""
    if len(asset.keys) != 1:
        return None
    path = asset.key.path
    return path[1] if len(path) == 3 and path[0] == "raw" and path[1] in PLATFORM_ROLES else None


def estate_assets(assets: Sequence[AssetsDefinition], estate: Estate) -> list[AssetsDefinition]:
    """``assets`` without the raw assets of platforms ``estate`` does not declare, plus the
    declared-only platforms' raw assets it does declare."""
    kept = [a for a in assets if (platform := raw_platform(a)) is None or estate.declares(platform)]
    return kept + [a for p, build in DECLARED_ONLY_BUILDERS.items() if estate.declares(p) for a in build()]


def estate_ingest_assets(estate: Estate = DEFAULT_ESTATE) -> list[AssetsDefinition]:
    """The raw ingestion assets of ``estate`` alone."""
    return estate_assets(ingest_assets, estate)


__all__ = ["INGEST_GROUPS", "PLATFORM_GROUPS", "estate_assets", "estate_ingest_assets", "ingest_assets"]
