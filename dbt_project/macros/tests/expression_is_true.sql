{#- Every row satisfies a boolean SQL expression (e.g. "valid_from < valid_to").
    Returns the rows that do not; rows where it is null count as failures too. -#}
{% test expression_is_true(model, expression, column_name=none) -%}
  select *
  from {{ model }}
  where not coalesce(({{ expression }}), false)
{%- endtest %}
