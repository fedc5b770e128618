{#- The relation of an ops source (the pipeline's own tables), or none when the warehouse does
    not have it: nothing posted yet, or a database holding only the raw tables (the PostgreSQL
    portability build). Callers read such a missing table as empty: like a missing source
    column, it is drift to report, not a reason to stop the marts. -#}
{% macro ps_optional_relation(src) -%}
  {%- if not execute -%}
    {{ return(none) }}
  {%- endif -%}
  {{ return(adapter.get_relation(database=src.database, schema=src.schema, identifier=src.identifier)) }}
{%- endmacro %}

{#- FROM clause of a model over an ops source that may be missing (see ps_optional_relation). -#}
{% macro ps_from_optional(src, relation) -%}
{%- if relation is not none %}
from {{ src }}
{%- else %}
from (select 1 as no_ledger) as missing_ledger
where 1 = 0
{%- endif %}
{%- endmacro %}
