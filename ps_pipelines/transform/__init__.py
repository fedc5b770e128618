"""dbt in Dagster: the models as assets, their automation, and the analysts' published copy.

Nothing is imported here: ``python -m ps_pipelines.transform.project`` must run before any
module that reads the dbt manifest exists to be imported.
"""
