{#- Grain: one row per Kantata milestone story (latest version); deleted ones kept, flagged.
    completed_at: when a completed milestone was last set to completed, the created_at of its
    story state change (Kantata's audit trail of a story's states). -#}
{%- set src = source('kantata', 'milestones') -%}
{%- set cols = ps_source_columns(src) -%}

with latest as (
    select * from {{ ps_latest_version(src) }} as latest_rows
)

select
    {{ ps_column(cols, 'id', 'milestone_id', 'string') }},
    {{ ps_column(cols, 'workspace_id', 'project_id', 'string') }},
    {{ ps_column(cols, 'title', 'milestone_name', 'string') }},
    {{ ps_column(cols, 'story_type', 'story_type', 'string') }},
    {{ ps_column(cols, 'state', 'milestone_state', 'string') }},
    {{ ps_column(cols, 'due_date', 'due_date', 'date') }},
    case when {{ ps_column_expr(cols, 'state', 'string') }} = 'completed'
         then {{ ps_column_expr(cols, 'story_state_change_created_at', 'timestamp') }} end as completed_at,
    {{ cents_to_amount(cols, 'budget_estimate_in_cents', 'budget_amount') }},
    {{ ps_column(cols, 'created_at', 'created_at', 'timestamp') }},
    {{ ps_lineage_columns(cols) }}
    {{ ps_pass_through_columns(cols, 'kantata_milestones_pass_through_columns') }}
from latest
