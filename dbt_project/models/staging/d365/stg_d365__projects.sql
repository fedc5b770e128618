{#- Grain: one row per Dynamics 365 project (Projects of every legal entity); deleted kept,
    flagged. The columns are stg_netsuite__projects'. project_id is the ProjectID (keyed per
    legal entity in F&O; numbered across companies by the firm, tested unique), opportunity_id
    the firm's PsCrmOpportunityId extension field, customer_id the project's CustomerAccount,
    currency_ref the sales currency of its project contract (an ISO code), entity_status the
    ProjectStage (e.g. InProcess, Finished). Projects expose no creation time. -#}
{%- set src = source('d365', 'projects') -%}
{%- set cols = ps_source_columns(src) -%}
{%- set contract_src = source('d365', 'project_contracts') -%}
{%- set contract_cols = ps_source_columns(contract_src) -%}

with latest as (
    select * from {{ ps_latest_version(src) }} as latest_rows
),

contracts as (
    select
        lower({{ ps_column_expr(contract_cols, 'dataareaid', 'string') }}) as company_id,
        {{ ps_column_expr(contract_cols, 'projectcontractid', 'string') }} as project_contract_id,
        upper({{ ps_column_expr(contract_cols, 'salescurrency', 'string') }}) as sales_currency
    from {{ ps_latest_version(contract_src) }} as contract_rows
    where not coalesce(_is_deleted, false)
)

select
    {{ ps_column(cols, 'projectid', 'project_id', 'string') }},
    {{ ps_column(cols, 'projectid', 'project_number', 'string') }},
    {{ ps_column(cols, 'projectname', 'project_name', 'string') }},
    nullif(trim({{ ps_column_expr(cols, 'pscrmopportunityid', 'string') }}), '') as opportunity_id,
    {{ ps_column(cols, 'customeraccount', 'customer_id', 'string') }},
    lower({{ ps_column_expr(cols, 'dataareaid', 'string') }}) as subsidiary_id,
    contracts.sales_currency as currency_ref,
    {{ ps_column(cols, 'projectstage', 'entity_status', 'string') }},
    {{ ps_column(cols, 'projectedstartdate', 'start_date', 'date') }},
    {{ ps_column(cols, 'projectedenddate', 'projected_end_date', 'date') }},
    cast(null as {{ ps_type('timestamp') }}) as created_at,
    {{ ps_lineage_columns(cols) }}
    {{ ps_pass_through_columns(cols, 'd365_projects_pass_through_columns') }}
from latest
left join contracts
    on contracts.company_id = lower(latest.dataareaid)
   and contracts.project_contract_id = latest.projectcontractid
