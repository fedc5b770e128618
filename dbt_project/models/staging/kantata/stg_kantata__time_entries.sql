{#- Grain: one row per Kantata time entry (latest version); deleted entries kept, flagged.
    bill_rate is Kantata's rate on the entry, in the project's currency. Approval comes from
    the entry's `approved` flag and its latest timesheet submission (macros/statuses.sql). -#}
{%- set src = source('kantata', 'time_entries') -%}
{%- set cols = ps_source_columns(src) -%}

with latest as (
    select * from {{ ps_latest_version(src) }} as latest_rows
),

renamed as (
    select
        {{ ps_column(cols, 'id', 'time_entry_id', 'string') }},
        {{ ps_column(cols, 'workspace_id', 'project_id', 'string') }},
        {{ ps_column(cols, 'user_id', 'user_id', 'string') }},
        {{ ps_column(cols, 'story_id', 'story_id', 'string') }},
        {{ ps_column(cols, 'date_performed', 'work_date', 'date') }},
        {{ ps_column(cols, 'time_in_minutes', 'minutes', 'number') }},
        coalesce({{ ps_column_expr(cols, 'billable', 'boolean') }}, false) as is_billable,
        {{ kantata_approval_status(ps_column_expr(cols, 'approved', 'boolean'),
                                   ps_column_expr(cols, 'recent_submission_status', 'string')) }} as approval_status,
        {{ kantata_approved_at(ps_column_expr(cols, 'recent_submission_status', 'string'),
                               ps_column_expr(cols, 'recent_submission_current_resolution_created_at_date',
                                              'timestamp')) }} as approved_at,
        {{ cents_to_amount(cols, 'rate_in_cents', 'bill_rate') }},
        {{ ps_column(cols, 'notes', 'notes', 'string') }},
        {{ ps_column(cols, 'created_at', 'created_at', 'timestamp') }},
        {{ ps_lineage_columns(cols) }}
        {{ ps_pass_through_columns(cols, 'kantata_time_entries_pass_through_columns') }}
    from latest
)

select
    *,
    minutes / 60.0 as hours
from renamed
