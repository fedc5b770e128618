{#- Grain: one row per Kantata workspace (delivery project), latest version; deleted kept, flagged.
    project_status normalises Kantata's numeric status key (see DECISIONLOG.md). -#}
{%- set src = source('kantata', 'projects') -%}
{%- set cols = ps_source_columns(src) -%}

with latest as (
    select * from {{ ps_latest_version(src) }} as latest_rows
),

renamed as (
    select
        {{ ps_column(cols, 'id', 'project_id', 'string') }},
        {{ ps_column(cols, 'title', 'project_name', 'string') }},
        {{ ps_column(cols, 'currency', 'currency_code', 'string') }},
        {{ cents_to_amount(cols, 'price_in_cents', 'budget_amount') }},
        {{ ps_column(cols, 'start_date', 'start_date', 'date') }},
        {{ ps_column(cols, 'due_date', 'due_date', 'date') }},
        {{ ps_column(cols, 'status_key', 'status_key', 'integer') }},
        {{ ps_column(cols, 'status_message', 'status_message', 'string') }},
        coalesce({{ ps_column_expr(cols, 'archived', 'boolean') }}, false) as is_archived,
        {{ ps_column(cols, 'rate_card_id', 'rate_card_id', 'string') }},
        {{ ps_column(cols, 'salesforce_opportunity_id', 'opportunity_id', 'string') }},
        {{ ps_column(cols, 'created_at', 'created_at', 'timestamp') }},
        {{ ps_lineage_columns() }}
        {{ ps_pass_through_columns(cols, 'kantata_projects_pass_through_columns') }}
    from latest
)

select
    *,
    case
        when status_key is null then 'unknown'
        when lower(status_message) like '%hold%' then 'on_hold'
        when status_key < 200 then 'not_started'
        when status_key < 400 then 'active'
        when status_key < 500 then 'completed'
        else 'cancelled'
    end as project_status
from renamed
