{#- Grain: one row per Certinia milestone (pse__Milestone__c, latest version); deleted kept,
    flagged. The columns of stg_kantata__milestones: due_date is the target date; completed_at
    the start of the actual date in the firm's time zone (Certinia keeps a date, not a time: read
    back with to_firm_date it is that same day) once the milestone is approved as complete. -#}
{%- set src = source('certinia', 'milestones') -%}
{%- set cols = ps_source_columns(src) -%}

with latest as (
    select * from {{ ps_latest_version(src) }} as latest_rows
)

select
    {{ ps_column(cols, 'id', 'milestone_id', 'string') }},
    {{ ps_column(cols, 'pse__project__c', 'project_id', 'string') }},
    {{ ps_column(cols, 'name', 'milestone_name', 'string') }},
    'milestone' as story_type,
    {{ ps_column(cols, 'pse__status__c', 'milestone_state', 'string') }},
    {{ ps_column(cols, 'pse__target_date__c', 'due_date', 'date') }},
    case when {{ ps_column_expr(cols, 'pse__status__c', 'string') }} = 'Approved'
              or coalesce({{ ps_column_expr(cols, 'pse__approved__c', 'boolean') }}, false)
         then {{ from_firm_date(ps_column_expr(cols, 'pse__actual_date__c', 'date')) }}
    end as completed_at,
    {{ ps_decimal_column_expr(cols, 'pse__milestone_amount__c') }} as budget_amount,
    {{ ps_column(cols, 'createddate', 'created_at', 'timestamp') }},
    coalesce({{ ps_column_expr(cols, 'pse__approved_for_billing__c', 'boolean') }}, false) as is_approved_for_billing,
    {{ ps_lineage_columns(cols) }}
    {{ ps_pass_through_columns(cols, 'certinia_milestones_pass_through_columns') }}
from latest
