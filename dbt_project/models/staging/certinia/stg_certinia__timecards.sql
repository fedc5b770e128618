{#- Grain: one row per Certinia timecard day with hours (latest version of the timecard);
    deleted timecards' days kept, flagged. A timecard (pse__Timecard_Header__c) is one
    resource's week on one project with seven day fields; each day with hours > 0 becomes a
    row with the columns of stg_kantata__time_entries, so the time facts can union the PSAs.
    time_entry_id: the timecard id and the day (e.g. a1B...:tuesday); work_date: the day's date
    in the week starting on pse__start_date__c (whatever weekday the org starts its weeks on);
    story_id: the timecard's milestone. Certinia documents no approval time (approved_at null). -#}
{%- set src = source('certinia', 'timecards') -%}
{%- set cols = ps_source_columns(src) -%}
{%- set days = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'] -%}

with latest as (
    select * from {{ ps_latest_version(src) }} as latest_rows
),

timecards as (
    select
        {{ ps_column(cols, 'id', 'timecard_id', 'string') }},
        {{ ps_column(cols, 'pse__project__c', 'project_id', 'string') }},
        {{ ps_column(cols, 'pse__resource__c', 'user_id', 'string') }},
        {{ ps_column(cols, 'pse__milestone__c', 'story_id', 'string') }},
        {{ ps_column(cols, 'pse__assignment__c', 'assignment_id', 'string') }},
        {{ ps_column(cols, 'pse__start_date__c', 'week_start_date', 'date') }},
        {%- for day in days %}
        {{ ps_column(cols, 'pse__' ~ day ~ '_hours__c', day ~ '_hours', 'number') }},
        {{ ps_column(cols, 'pse__' ~ day ~ '_notes__c', day ~ '_notes', 'string') }},
        {%- endfor %}
        coalesce({{ ps_column_expr(cols, 'pse__billable__c', 'boolean') }}, false) as is_billable,
        {{ certinia_approval_status(ps_column_expr(cols, 'pse__status__c', 'string'),
                                    ps_column_expr(cols, 'pse__approved__c', 'boolean')) }} as approval_status,
        {{ ps_decimal_column_expr(cols, 'pse__bill_rate__c') }} as bill_rate,
        {{ ps_column(cols, 'pse__timecard_notes__c', 'timecard_notes', 'string') }},
        {{ ps_column(cols, 'createddate', 'created_at', 'timestamp') }},
        {{ ps_lineage_columns(cols) }}
        {{ ps_pass_through_columns(cols, 'certinia_timecards_pass_through_columns') }}
    from latest
),

days as (
    {%- for day in days %}
    select
        *,
        '{{ day }}' as day_name,
        {{ loop.index }} as iso_weekday,
        {{ day }}_hours as day_hours,
        {{ day }}_notes as day_notes
    from timecards
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
)

select
    {{ dbt.concat(['timecard_id', "':'", 'day_name']) }} as time_entry_id,
    project_id,
    user_id,
    story_id,
    cast({{ dbt.dateadd('day', '(iso_weekday - extract(isodow from week_start_date) + 7) % 7',
                        'week_start_date') }} as date) as work_date,
    day_hours * 60 as minutes,
    is_billable,
    approval_status,
    cast(null as {{ ps_type('timestamp') }}) as approved_at,
    bill_rate,
    coalesce(day_notes, timecard_notes) as notes,
    created_at,
    source_updated_at,
    is_deleted,
    deleted_at,
    _loaded_at,
    is_quarantined,
    quarantined_at,
    quarantine_rule,
    day_hours as hours,
    timecard_id,
    assignment_id
from days
where day_hours > 0
