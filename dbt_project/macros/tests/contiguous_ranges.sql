{#- Effective-dated versions of one entity form an unbroken, non-overlapping history: every
    range is non-empty and ends exactly where the entity's next range begins.
    Returns the offending versions. -#}
{% test contiguous_ranges(model, partition_by, from_column='valid_from', to_column='valid_to') -%}
  select *
  from (
    select
      {{ partition_by }},
      {{ from_column }},
      {{ to_column }},
      lead({{ from_column }}) over (partition by {{ partition_by }} order by {{ from_column }}) as next_from
    from {{ model }}
  ) as versions
  where {{ from_column }} >= {{ to_column }}
     or (next_from is not null and next_from <> {{ to_column }})
{%- endtest %}
