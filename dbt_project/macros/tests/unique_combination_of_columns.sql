{#- The declared grain of a model holds: no two rows share the same combination of
    combination_of_columns. Returns one row per duplicated combination. -#}
{% test unique_combination_of_columns(model, combination_of_columns) -%}
  {%- set columns_csv = combination_of_columns | join(', ') -%}
  select {{ columns_csv }}, count(*) as duplicate_rows
  from {{ model }}
  group by {{ columns_csv }}
  having count(*) > 1
{%- endtest %}
