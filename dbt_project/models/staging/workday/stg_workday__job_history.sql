{#- Grain: one row per worker and effective date (RaaS Worker_Job_History); deleted kept, flagged. -#}
{%- set src = source('workday', 'job_history') -%}
{%- set cols = ps_source_columns(src) -%}

with latest as (
    select * from {{ ps_latest_version(src) }} as latest_rows
)

select
    _source_id as job_history_id,
    {{ ps_column(cols, 'worker_id', 'worker_id', 'string') }},
    {{ ps_column(cols, 'effective_date', 'effective_date', 'date') }},
    {{ ps_column(cols, 'job_profile', 'job_profile', 'string') }},
    {{ ps_column(cols, 'business_title', 'business_title', 'string') }},
    {{ ps_column(cols, 'cost_center', 'cost_center', 'string') }},
    {{ ps_column(cols, 'employment_status', 'employment_status', 'string') }},
    {{ ps_column(cols, 'fte', 'fte', 'number') }},
    {{ ps_column(cols, 'location', 'location', 'string') }},
    {{ ps_lineage_columns(cols) }}
    {{ ps_pass_through_columns(cols, 'workday_job_history_pass_through_columns') }}
from latest
