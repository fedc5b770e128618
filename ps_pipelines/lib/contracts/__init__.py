"""Pandera data contracts for every ingested source entity."""

from ps_pipelines.lib.contracts import certinia, kantata, netsuite, salesforce, workday
from ps_pipelines.lib.contracts.base import EntityContract, Record, flatten_record

ALL_CONTRACTS: tuple[EntityContract, ...] = (*salesforce.ALL, *kantata.ALL, *workday.ALL, *netsuite.ALL)
CONTRACTS_BY_KEY: dict[str, EntityContract] = {contract.key: contract for contract in ALL_CONTRACTS}
# Sources only a declared estate brings into the graph (not the default estate's ALL_CONTRACTS).
ESTATE_CONTRACTS: tuple[EntityContract, ...] = certinia.ALL

__all__ = ["ALL_CONTRACTS", "CONTRACTS_BY_KEY", "ESTATE_CONTRACTS", "EntityContract", "Record", "flatten_record"]
