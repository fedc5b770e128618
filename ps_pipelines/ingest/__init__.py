"""Building raw ingestion assets from entity contracts (the assets themselves: ps_pipelines/defs/<platform>/)."""
