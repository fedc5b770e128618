"""Pandera data contracts for every ingested source entity."""

from ps_pipelines.lib.contracts import kantata, netsuite, salesforce, workday
from ps_pipelines.lib.contracts.base import EntityContract, Record, flatten_record

ALL_CONTRACTS: tuple[EntityContract, ...] = (*salesforce.ALL, *kantata.ALL, *workday.ALL, *netsuite.ALL)
CONTRACTS_BY_KEY: dict[str, EntityContract] = {contract.key: contract for contract in ALL_CONTRACTS}

__all__ = ["ALL_CONTRACTS", "CONTRACTS_BY_KEY", "EntityContract", "Record", "flatten_record"]
