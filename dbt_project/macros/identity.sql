{#- One-to-one pairing of identity candidates across two systems.

    candidates: a relation/CTE with columns <left_id>, <right_id>, match_method,
    match_confidence, match_rank (1 = strongest rule). A pair is kept when each side is the
    other's best candidate (lowest rank, then lowest id, so the result is deterministic).
    A second round pairs the records the first round left over, so a chain of preferences
    (A prefers X, X prefers B, B prefers Y ...) does not strand a clean pair.
    Returns a subquery: <left_id>, <right_id>, match_method, match_confidence, match_rank. -#}
{% macro mutual_best_pairs(candidates, left_id, right_id) -%}
  (
    with first_round as (
      {{ _best_pairs_round(candidates, left_id, right_id) }}
    ),
    leftovers as (
      select *
      from {{ candidates }} as candidate
      where candidate.{{ left_id }} not in (select {{ left_id }} from first_round)
        and candidate.{{ right_id }} not in (select {{ right_id }} from first_round)
    ),
    second_round as (
      {{ _best_pairs_round('leftovers', left_id, right_id) }}
    )
    select * from first_round
    union all
    select * from second_round
  )
{%- endmacro %}

{% macro _best_pairs_round(candidates, left_id, right_id) -%}
  select {{ left_id }}, {{ right_id }}, match_method, match_confidence, match_rank
  from (
    select
      candidate.*,
      row_number() over (
        partition by candidate.{{ left_id }} order by candidate.match_rank, candidate.{{ right_id }}
      ) as left_preference,
      row_number() over (
        partition by candidate.{{ right_id }} order by candidate.match_rank, candidate.{{ left_id }}
      ) as right_preference
    from {{ candidates }} as candidate
  ) as ranked
  where left_preference = 1 and right_preference = 1
{%- endmacro %}

{#- Among candidates not in pairs, each right-side record's best left partner when that
    partner is paired already: the right record is a duplicate of that identity.
    Returns a subquery: <left_id>, <right_id>, match_method, match_confidence. -#}
{% macro duplicate_matches(candidates, pairs, left_id, right_id) -%}
  (
    select {{ left_id }}, {{ right_id }}, match_method, match_confidence
    from (
      select
        candidate.*,
        row_number() over (
          partition by candidate.{{ right_id }} order by candidate.match_rank, candidate.{{ left_id }}
        ) as right_preference
      from {{ candidates }} as candidate
      where candidate.{{ right_id }} not in (select {{ right_id }} from {{ pairs }})
        and candidate.{{ left_id }} in (select {{ left_id }} from {{ pairs }})
    ) as ranked
    where right_preference = 1
  )
{%- endmacro %}
