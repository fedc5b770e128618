{#- Logical column types used across the project, resolved per adapter.
    One name per kind of value keeps staging, contracts and tests in step:
      string, integer, number (floats: rates, hours, fte), money (exact, 2 decimals),
      rate (exact, 6 decimals: exchange and bill rates), exact (the wide exact decimal that
      money arithmetic runs in before its one rounding to money, macros/money.sql), boolean,
      date, timestamp (timezone-aware UTC instant). A name that is not listed is passed
      through as SQL. Decimal types always spell precision and scale: a bare numeric is
      DECIMAL(18,3) on DuckDB but unbounded on PostgreSQL. -#}
{% macro ps_type(name) -%}
  {{ return(adapter.dispatch('ps_type', 'ps_pipelines')(name)) }}
{%- endmacro %}

{% macro default__ps_type(name) -%}
  {%- set types = {
      'string': dbt.type_string(),
      'integer': dbt.type_bigint(),
      'number': 'double precision',
      'money': 'numeric(18,2)',
      'rate': 'numeric(18,6)',
      'exact': 'numeric(38,16)',
      'boolean': dbt.type_boolean(),
      'date': 'date',
      'timestamp': 'timestamp with time zone',
  } -%}
  {{ return(types.get(name, name)) }}
{%- endmacro %}

{#- PostgreSQL: strings are text (what its string functions and literals return), so the
    marts' contracted types hold however a column was computed. -#}
{% macro postgres__ps_type(name) -%}
  {%- if name == 'string' -%}
    {{ return('text') }}
  {%- endif -%}
  {{ return(default__ps_type(name)) }}
{%- endmacro %}

{% macro duckdb__ps_type(name) -%}
  {%- set types = {
      'string': 'varchar',
      'integer': 'bigint',
      'number': 'double',
      'money': 'decimal(18,2)',
      'rate': 'decimal(18,6)',
      'exact': 'decimal(38,16)',
      'boolean': 'boolean',
      'date': 'date',
      'timestamp': 'timestamptz',
  } -%}
  {{ return(types.get(name, name)) }}
{%- endmacro %}
