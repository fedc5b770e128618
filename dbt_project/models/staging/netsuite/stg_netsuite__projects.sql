{#- Grain: one row per NetSuite project (job record); deleted kept, flagged. opportunity_id is
    the job's externalid (the Salesforce Opportunity Id); customer_id is its parent customer. -#}
{%- set src = source('netsuite', 'projects') -%}
{%- set cols = ps_source_columns(src) -%}

with latest as (
    select * from {{ ps_latest_version(src) }} as latest_rows
)

select
    {{ ps_column(cols, 'id', 'project_id', 'string') }},
    {{ ps_column(cols, 'entityid', 'project_number', 'string') }},
    {{ ps_column(cols, 'companyname', 'project_name', 'string') }},
    nullif(trim({{ ps_column_expr(cols, 'externalid', 'string') }}), '') as opportunity_id,
    {{ ps_column(cols, 'parent', 'customer_id', 'string') }},
    {{ ps_column(cols, 'subsidiary', 'subsidiary_id', 'string') }},
    {{ ps_column(cols, 'currency', 'currency_ref', 'string') }},
    {{ ps_column(cols, 'entitystatus', 'entity_status', 'string') }},
    {{ ps_column(cols, 'startdate', 'start_date', 'date') }},
    {{ ps_column(cols, 'projectedenddate', 'projected_end_date', 'date') }},
    {{ ps_column(cols, 'datecreated', 'created_at', 'timestamp') }},
    {{ ps_lineage_columns(cols) }}
    {{ ps_pass_through_columns(cols, 'netsuite_projects_pass_through_columns') }}
from latest
