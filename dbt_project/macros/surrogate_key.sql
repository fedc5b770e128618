{#- A deterministic key from one or more columns: md5 of the values joined with '|',
    nulls spelled '_null_' so (a, null) and (null, a) never collide. Cross-database
    through dbt.concat / dbt.hash / dbt.type_string. -#}
{% macro surrogate_key(field_list) -%}
  {%- set parts = [] -%}
  {%- for field in field_list -%}
    {%- do parts.append("coalesce(cast(" ~ field ~ " as " ~ dbt.type_string() ~ "), '_null_')") -%}
    {%- if not loop.last -%}{%- do parts.append("'|'") -%}{%- endif -%}
  {%- endfor -%}
  {{ dbt.hash(dbt.concat(parts)) }}
{%- endmacro %}
