{#- Grain: one row per Kantata expense (latest version); deleted expenses kept, flagged.
    Approval comes from the expense's latest expense report submission (macros/statuses.sql). -#}
{%- set src = source('kantata', 'expenses') -%}
{%- set cols = ps_source_columns(src) -%}

with latest as (
    select * from {{ ps_latest_version(src) }} as latest_rows
)

select
    {{ ps_column(cols, 'id', 'expense_id', 'string') }},
    {{ ps_column(cols, 'workspace_id', 'project_id', 'string') }},
    {{ ps_column(cols, 'user_id', 'user_id', 'string') }},
    {{ ps_column(cols, 'date', 'expense_date', 'date') }},
    {{ ps_column(cols, 'category', 'category', 'string') }},
    {{ cents_to_amount(cols, 'amount_in_cents', 'amount') }},
    {{ ps_column(cols, 'currency', 'currency_code', 'string') }},
    coalesce({{ ps_column_expr(cols, 'is_billable', 'boolean') }}, false) as is_billable,
    {{ kantata_approval_status('cast(null as boolean)',
                               ps_column_expr(cols, 'recent_submission_status', 'string')) }} as approval_status,
    {{ kantata_approved_at(ps_column_expr(cols, 'recent_submission_status', 'string'),
                           ps_column_expr(cols, 'recent_submission_current_resolution_created_at_date',
                                          'timestamp')) }} as approved_at,
    {{ ps_column(cols, 'notes', 'notes', 'string') }},
    {{ ps_column(cols, 'created_at', 'created_at', 'timestamp') }},
    {{ ps_lineage_columns(cols) }}
    {{ ps_pass_through_columns(cols, 'kantata_expenses_pass_through_columns') }}
from latest
