{#- Project status normalisation onto dim_project's statuses:
    not_started, active, on_hold, completed, cancelled, unknown.
    Status labels are configured per firm, so a recognisable label wins; Kantata's numeric
    key range is the fallback (see DECISIONLOG.md). -#}

{#- The status a label names, or null when the label says nothing recognisable. -#}
{% macro project_status_from_label(label) -%}
  case
    when lower({{ label }}) like '%cancel%' then 'cancelled'
    when lower({{ label }}) like '%hold%' then 'on_hold'
    when lower({{ label }}) like '%complet%' or lower({{ label }}) like '%clos%'
      or lower({{ label }}) like '%done%' or lower({{ label }}) like '%finish%' then 'completed'
    when lower({{ label }}) like '%not started%' or lower({{ label }}) like '%planning%'
      or lower({{ label }}) like '%estimate%' or lower({{ label }}) like '%pending%' then 'not_started'
    when lower({{ label }}) like '%progress%' or lower({{ label }}) like '%active%'
      or lower({{ label }}) like '%inprocess%'
      or lower({{ label }}) like '%risk%' then 'active'
  end
{%- endmacro %}

{#- Kantata workspace status: label first, else the key range
    (1xx not started, 2xx-3xx active, 4xx on hold, 5xx completed, 6xx+ cancelled). -#}
{% macro kantata_project_status(status_key, status_message) -%}
  coalesce(
    {{ project_status_from_label(status_message) }},
    case
      when {{ status_key }} is null then 'unknown'
      when {{ status_key }} < 200 then 'not_started'
      when {{ status_key }} < 400 then 'active'
      when {{ status_key }} < 500 then 'on_hold'
      when {{ status_key }} < 600 then 'completed'
      else 'cancelled'
    end
  )
{%- endmacro %}

{#- NetSuite job entitystatus (free text per account); unrecognised is 'unknown'. -#}
{% macro erp_project_status(entity_status) -%}
  coalesce({{ project_status_from_label(entity_status) }}, 'unknown')
{%- endmacro %}

{#- Approval of a Kantata time entry or expense from what Kantata documents (mirrors
    ps_pipelines.lib.contracts.kantata.approval_status): a time entry's `approved` flag (pass
    null for expenses, which have none), else the status of the latest submission the record
    was on (`recent_submission_status`: pending -> submitted, rejected; cancelled or none ->
    draft). -#}
{% macro kantata_approval_status(approved, submission_status) -%}
  case
    when coalesce({{ approved }}, false) or {{ submission_status }} = 'approved' then 'approved'
    when {{ submission_status }} = 'pending' then 'submitted'
    when {{ submission_status }} = 'rejected' then 'rejected'
    else 'draft'
  end
{%- endmacro %}

{#- When an approved record was approved: its submission's current resolution time
    (`current_resolution_created_at_date`); null unless that submission is approved. -#}
{% macro kantata_approved_at(submission_status, resolution_at) -%}
  case when {{ submission_status }} = 'approved' then {{ resolution_at }} end
{%- endmacro %}

{#- Certinia project stage (a picklist the firm configures: Draft, Planned, In Progress,
    Completed, ...): the label first, then the package's planning stages, else 'unknown'. -#}
{% macro certinia_project_status(stage) -%}
  coalesce(
    {{ project_status_from_label(stage) }},
    case when lower({{ stage }}) in ('draft', 'planned') then 'not_started' else 'unknown' end
  )
{%- endmacro %}

{#- Approval of a Certinia timecard or expense onto Kantata's statuses: the Approved flag or
    status, else the status picklist (Saved and Draft are drafts). -#}
{% macro certinia_approval_status(status, approved) -%}
  case
    when coalesce({{ approved }}, false) or {{ status }} = 'Approved' then 'approved'
    when {{ status }} = 'Submitted' then 'submitted'
    when {{ status }} = 'Rejected' then 'rejected'
    else 'draft'
  end
{%- endmacro %}
