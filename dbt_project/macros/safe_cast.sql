{#- A cast that yields null instead of failing on a value that does not parse.
    dbt.safe_cast compiles to a plain cast on DuckDB, so one bad upstream value would
    fail the whole build; DuckDB has try_cast. Other adapters keep their own safe cast
    (dbt's default is a plain cast, which PostgreSQL needs: it has no try_cast). -#}
{% macro safe_cast(field, type) -%}
  {{ return(adapter.dispatch('safe_cast', 'ps_pipelines')(field, type)) }}
{%- endmacro %}

{% macro default__safe_cast(field, type) -%}
  cast({{ field }} as {{ type }})
{%- endmacro %}

{% macro duckdb__safe_cast(field, type) -%}
  try_cast({{ field }} as {{ type }})
{%- endmacro %}
