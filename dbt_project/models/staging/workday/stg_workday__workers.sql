{#- Grain: one row per Workday worker (latest snapshot); workers gone from the API are kept,
    flagged is_deleted. worker_id is the employee number RaaS reports use; worker_wid is
    the REST API's 32-hex WID. Workday's worker resource has no cost center, FTE or region:
    dim_worker takes the first two from the job history report and the region from the
    worker's location (seed work_location_countries). -#}
{%- set src = source('workday', 'workers') -%}
{%- set cols = ps_source_columns(src) -%}

with latest as (
    select * from {{ ps_latest_version(src) }} as latest_rows
),

renamed as (
    select
        {{ ps_column(cols, 'id', 'worker_wid', 'string') }},
        {{ ps_column(cols, 'workerid', 'worker_id', 'string') }},
        {{ ps_column(cols, 'descriptor', 'worker_name', 'string') }},
        {{ ps_column(cols, 'primaryworkemail', 'email', 'string') }},
        {{ ps_column(cols, 'businesstitle', 'business_title', 'string') }},
        {{ ps_column(cols, 'jobprofile_descriptor', 'job_profile', 'string') }},
        {{ ps_column(cols, 'location_descriptor', 'location', 'string') }},
        {{ ps_column(cols, 'hiredate', 'hire_date', 'date') }},
        {{ ps_column(cols, 'terminationdate', 'termination_date', 'date') }},
        {{ ps_column(cols, 'isactive', 'is_active', 'boolean') }},
        {{ ps_lineage_columns(cols) }}
        {{ ps_pass_through_columns(cols, 'workday_workers_pass_through_columns') }}
    from latest
)

select
    *,
    {{ normalize_email('email') }} as email_normalized
from renamed
