{#- Unnest a JSON array column into one row per element.

    from_relation: a relation or CTE name; json_column: the column holding the array as
    JSON text; key_columns: columns of from_relation to carry onto every element row;
    fields: {json_key: ps_type name} read from each element object.
    Output: key_columns, element_index (0-based position in the array), one column per
    field (named as its JSON key). Empty, null or non-array values give no rows.

    JSON functions differ per adapter (DuckDB json_each, PostgreSQL
    json_array_elements), hence the dispatch. -#}
{% macro unnest_json_array(from_relation, json_column, key_columns, fields) -%}
  {{ return(adapter.dispatch('unnest_json_array', 'ps_pipelines')(from_relation, json_column, key_columns, fields)) }}
{%- endmacro %}

{% macro default__unnest_json_array(from_relation, json_column, key_columns, fields) -%}
  {{ exceptions.raise_compiler_error("unnest_json_array has no implementation for adapter " ~ adapter.type()) }}
{%- endmacro %}

{% macro duckdb__unnest_json_array(from_relation, json_column, key_columns, fields) -%}
  select
    {% for column in key_columns -%}
      parent.{{ column }},
    {% endfor -%}
    cast(element.key as integer) as element_index
    {%- for name, type in fields.items() %},
    {{ safe_cast("element.value ->> '" ~ name ~ "'", ps_type(type)) }} as {{ name }}
    {%- endfor %}
  from {{ from_relation }} as parent,
    json_each(
      case when json_type(try_cast(parent.{{ json_column }} as json)) = 'ARRAY'
           then try_cast(parent.{{ json_column }} as json) end
    ) as element
{%- endmacro %}

{% macro postgres__unnest_json_array(from_relation, json_column, key_columns, fields) -%}
  select
    {% for column in key_columns -%}
      parent.{{ column }},
    {% endfor -%}
    cast(element.ordinality - 1 as integer) as element_index
    {%- for name, type in fields.items() %},
    cast(element.value ->> '{{ name }}' as {{ ps_type(type) }}) as {{ name }}
    {%- endfor %}
  from {{ from_relation }} as parent
  cross join lateral json_array_elements(
    case when json_typeof(cast(parent.{{ json_column }} as json)) = 'array'
         then cast(parent.{{ json_column }} as json) end
  ) with ordinality as element(value, ordinality)
{%- endmacro %}
