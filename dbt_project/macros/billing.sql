{#- Billing helpers shared by the facts, the KPI marts and the outbound models
    (DECISIONLOG.md, "Billing and invoice coverage"). -#}

{#- Deterministic external id of an outbound invoice line: psp:inl:<source type>:<source id>,
    e.g. psp:inl:time_entry:40001234. The billing writeback stores it in NetSuite's
    custcol_ps_line_key, which is how a later build knows the work is invoiced. -#}
{% macro psp_line_external_id(source_type, source_id) -%}
  {{ dbt.concat(["'psp:inl:'", source_type, "':'", source_id]) }}
{%- endmacro %}

{#- Deterministic external id of an outbound invoice:
    psp:inv:<PSA project id>:<NetSuite subsidiary id>:<currency code>:<YYYY-MM>. -#}
{% macro psp_invoice_external_id(project_id, subsidiary_id, currency_code, period_start) -%}
  {{ dbt.concat(["'psp:inv:'", "coalesce(" ~ project_id ~ ", '_')", "':'",
                 "coalesce(" ~ subsidiary_id ~ ", '_')", "':'",
                 "coalesce(" ~ currency_code ~ ", '_')", "':'", year_month(period_start)]) }}
{%- endmacro %}

{#- 'YYYY-MM' of a date, the same text on DuckDB and PostgreSQL. -#}
{% macro year_month(date_expr) -%}
  {{ dbt.concat([
      "cast(cast(extract(year from " ~ date_expr ~ ") as integer) as " ~ dbt.type_string() ~ ")",
      "'-'",
      "lpad(cast(cast(extract(month from " ~ date_expr ~ ") as integer) as " ~ dbt.type_string() ~ "), 2, '0')"]) }}
{%- endmacro %}

{#- First day of the month of a date, as a date. -#}
{% macro month_start(date_expr) -%}
  cast({{ dbt.date_trunc('month', date_expr) }} as date)
{%- endmacro %}

{#- What an ERP invoice line bills, from its item: NetSuite items are the firm's service and
    expense items, so the name says whether a line bills a milestone, a re-billed expense or
    time. Lines written by our writeback carry their source in custcol_ps_line_key instead. -#}
{% macro erp_line_kind(item_expr) -%}
  case
    when lower({{ item_expr }}) like '%milestone%' then 'milestone'
    when lower({{ item_expr }}) like '%expense%' or lower({{ item_expr }}) like '%reimburs%' then 'expense'
    else 'time'
  end
{%- endmacro %}

{#- The first substring matching a POSIX regular expression, or null. DuckDB's
    regexp_extract answers '' when nothing matches; PostgreSQL's substring answers null. -#}
{% macro regexp_first_match(expr, pattern) -%}
  {{ return(adapter.dispatch('regexp_first_match', 'ps_pipelines')(expr, pattern)) }}
{%- endmacro %}

{% macro default__regexp_first_match(expr, pattern) -%}
  substring({{ expr }} from '{{ pattern }}')
{%- endmacro %}

{% macro duckdb__regexp_first_match(expr, pattern) -%}
  nullif(regexp_extract({{ expr }}, '{{ pattern }}'), '')
{%- endmacro %}

{#- A ratio that is null instead of failing or infinite when the denominator is 0 or null. -#}
{% macro ps_ratio(numerator, denominator) -%}
  cast(({{ numerator }}) as {{ ps_type('number') }}) / nullif(cast(({{ denominator }}) as {{ ps_type('number') }}), 0)
{%- endmacro %}

{#- Comma-separated names of the conditions that hold, or null when none does: the
    validation_errors of the outbound models. checks: list of (name, SQL condition). -#}
{% macro ps_failed_checks(checks) -%}
  nullif(concat_ws(', '
    {%- for name, condition in checks %},
    case when {{ condition }} then '{{ name }}' end
    {%- endfor %}
  ), '')
{%- endmacro %}
