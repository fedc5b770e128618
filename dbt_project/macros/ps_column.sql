{#- Drift-tolerant staging columns.

    Staging lists every column explicitly. A column the platform stopped sending (or the
    raw table does not have yet) becomes a typed null instead of a compile error, and a
    retyped value that no longer parses becomes null (safe_cast) instead of a failed build:
    the drift shows up in tests and the ingestion drift check, not as a broken pipeline.

    Usage in a staging model:
      {%- set cols = ps_source_columns(source('salesforce', 'accounts')) -%}
      select {{ ps_column(cols, 'name', 'account_name', 'string') }}, ...
-#}

{#- Lower-cased column names of a relation, read once per model (empty while parsing). -#}
{% macro ps_source_columns(relation) -%}
  {%- if not execute -%}
    {{ return([]) }}
  {%- endif -%}
  {%- set names = [] -%}
  {%- for column in adapter.get_columns_in_relation(relation) -%}
    {%- do names.append(column.name | lower) -%}
  {%- endfor -%}
  {{ return(names) }}
{%- endmacro %}

{#- The typed expression for a source column, or a typed null when it is missing. -#}
{% macro ps_column_expr(source_columns, source_column, type) -%}
  {%- set sql_type = ps_type(type) -%}
  {%- if source_column | lower in source_columns -%}
    {{ safe_cast(adapter.quote(source_column | lower), sql_type) }}
  {%- else -%}
    cast(null as {{ sql_type }})
  {%- endif -%}
{%- endmacro %}

{% macro ps_column(source_columns, source_column, alias, type) -%}
  {{ ps_column_expr(source_columns, source_column, type) }} as {{ adapter.quote(alias) }}
{%- endmacro %}

{#- Kantata sends money as integer cents. -#}
{% macro cents_to_amount(source_columns, source_column, alias) -%}
  {{ ps_cents_to_money(ps_column_expr(source_columns, source_column, 'number')) }} as {{ adapter.quote(alias) }}
{%- endmacro %}

{#- A money or rate column a platform sends as a number (a JSON number or text): the decimal
    it stands for, rounded once to the type's scale (macros/money.sql). A plain cast of a
    double to decimal(18,2) would round 1.005 down on DuckDB and up on PostgreSQL. -#}
{% macro ps_decimal_column_expr(source_columns, source_column, type='money') -%}
  {{ ps_round_to(ps_exact_from_double(ps_column_expr(source_columns, source_column, 'number')), type) }}
{%- endmacro %}

{#- Firm-specific extra columns named in var('<platform>_<entity>_pass_through_columns'):
    plain names, or {name, alias} mappings. Missing ones become null like any other. -#}
{% macro ps_pass_through_columns(source_columns, var_name) -%}
  {%- for column in var(var_name, []) -%}
    {%- set name = column.name if column is mapping else column -%}
    {%- set alias = column.get('alias', name) if column is mapping else column -%}
    , {{ ps_column_expr(source_columns, name, 'string') if name | lower not in source_columns
         else adapter.quote(name | lower) }} as {{ adapter.quote(alias | lower) }}
  {%- endfor -%}
{%- endmacro %}

{#- The lineage every staging model carries: change time, delete flag, load time, and the
    quarantine hold (the record's newest version broke its contract, so this row is an older
    version held back: DECISIONLOG.md, "Quarantine holds"). The hold columns go through
    ps_column_expr: a raw table written before they existed reads as not held. -#}
{% macro ps_lineage_columns(source_columns) -%}
  _source_updated_at as source_updated_at,
    coalesce(_is_deleted, false) as is_deleted,
    _deleted_at as deleted_at,
    _loaded_at,
    coalesce({{ ps_column_expr(source_columns, '_quarantined_at', 'timestamp') }} is not null, false)
        as is_quarantined,
    {{ ps_column_expr(source_columns, '_quarantined_at', 'timestamp') }} as quarantined_at,
    {{ ps_column_expr(source_columns, '_quarantine_rule', 'string') }} as quarantine_rule
{%- endmacro %}

{#- Raw is unique by _source_id already, but staging must not depend on that: keep the
    latest version of each record (by source change time, then load time). -#}
{% macro ps_latest_version(relation) -%}
  (
    select *
    from (
      select
        raw_rows.*,
        row_number() over (
          partition by _source_id
          order by _source_updated_at desc nulls last, _loaded_at desc
        ) as _version_rank
      from {{ relation }} as raw_rows
    ) as ranked
    where _version_rank = 1
  )
{%- endmacro %}
