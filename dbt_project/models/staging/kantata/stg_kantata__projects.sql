{#- Grain: one row per Kantata workspace (delivery project), latest version; deleted kept, flagged.
    project_status normalises the status label, else Kantata's numeric key (macros/statuses.sql).
    opportunity_id: the workspace's external reference to its Salesforce opportunity
    (service_model_ref), folded into the raw row by ingestion. -#}
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
        {{ ps_column(cols, 'external_reference_service_model_ref', 'opportunity_id', 'string') }},
        {{ ps_column(cols, 'created_at', 'created_at', 'timestamp') }},
        {{ ps_lineage_columns(cols) }}
        {{ ps_pass_through_columns(cols, 'kantata_projects_pass_through_columns') }}
    from latest
)

select
    *,
    {{ kantata_project_status('status_key', 'status_message') }} as project_status
from renamed
