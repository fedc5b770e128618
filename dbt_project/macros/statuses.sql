{#- NetSuite job entitystatus (free text per account) mapped onto dim_project's statuses;
    anything unrecognised is 'unknown' rather than a guess. -#}
{% macro erp_project_status(expr) -%}
  case
    when {{ expr }} is null then null
    when lower({{ expr }}) like '%cancel%' then 'cancelled'
    when lower({{ expr }}) like '%hold%' then 'on_hold'
    when lower({{ expr }}) like '%clos%' or lower({{ expr }}) like '%complet%' then 'completed'
    when lower({{ expr }}) like '%progress%' or lower({{ expr }}) like '%active%' then 'active'
    when lower({{ expr }}) like '%not started%' or lower({{ expr }}) like '%pending%'
      or lower({{ expr }}) like '%award%' then 'not_started'
    else 'unknown'
  end
{%- endmacro %}
