"""Pandera data contracts for every ingested source entity."""

from ps_pipelines.lib.contracts import certinia, d365, hubspot, kantata, netsuite, salesforce, workday
from ps_pipelines.lib.contracts.base import EntityContract, Record, flatten_record

# The default estate's entities (Salesforce, Kantata, Workday, NetSuite): what the default
# Definitions ingest. Sources an estate must declare (HubSpot, Certinia, Dynamics 365) are known beside them but are not
# part of the default graph until the estate configuration adds them (issue 13).
ALL_CONTRACTS: tuple[EntityContract, ...] = (*salesforce.ALL, *kantata.ALL, *workday.ALL, *netsuite.ALL)
# Sources only a declared estate brings into the graph (HubSpot, Certinia, Dynamics 365): known to
# lookups and documentation, not part of the default graph.
DECLARED_ONLY_CONTRACTS: tuple[EntityContract, ...] = (*hubspot.ALL, *certinia.ALL, *d365.ALL)
EVERY_CONTRACT: tuple[EntityContract, ...] = (*ALL_CONTRACTS, *DECLARED_ONLY_CONTRACTS)
CONTRACTS_BY_KEY: dict[str, EntityContract] = {contract.key: contract for contract in EVERY_CONTRACT}

__all__ = ["ALL_CONTRACTS", "CONTRACTS_BY_KEY", "DECLARED_ONLY_CONTRACTS", "EVERY_CONTRACT", "EntityContract",
           "Record", "flatten_record"]
