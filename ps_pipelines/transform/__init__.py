"""The dbt project as Dagster sees it (project.py: its manifest) and what a rerun must rebuild
(staleness.py). The dbt assets themselves are in ps_pipelines/defs/transform/."""
