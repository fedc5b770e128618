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

{#- The identity bridge: one row per source record of both systems, keyed by the identity it
    belongs to. The left system is the master: each of its records is an identity of its own
    (key = surrogate of left system + left id). A right record joins its primary pair's
    identity, or a duplicate's (is_primary_record false), or is an identity of its own.

    left / right: dicts with system (the source_system label), relation, id (its id column),
    column (the output column holding that system's id) and unmatched (the match_method of
    a record with no partner). Either side may name a system_column instead of a system: the
    label of each record, when that side unions several platforms (an estate's CRMs or PSAs);
    the key hashes the same label either way, so a one-platform estate's keys do not change.
    pairs / duplicates: from mutual_best_pairs / duplicate_matches.
    Returns: <key_column>, source_system, source_record_id, <left.column>, <right.column>,
    match_method, match_confidence, is_primary_record. -#}
{% macro identity_bridge(key_column, left, right, pairs, duplicates) -%}
    {%- set system_column = left.get('system_column') -%}
    {%- set left_system = 'l.' ~ system_column if system_column else "'" ~ left.system ~ "'" -%}
    {%- set matched_system = 'matched_left.' ~ system_column if system_column else "'" ~ left.system ~ "'" -%}
    {%- set right_system = 'r.' ~ right.system_column if right.get('system_column') else "'" ~ right.system ~ "'" -%}
    select
        {{ surrogate_key([left_system, 'l.' ~ left.id]) }} as {{ key_column }},
        {{ left_system }} as source_system,
        l.{{ left.id }} as source_record_id,
        l.{{ left.id }} as {{ left.column }},
        p.{{ right.id }} as {{ right.column }},
        coalesce(p.match_method, '{{ left.unmatched }}') as match_method,
        cast(p.match_confidence as {{ ps_type('number') }}) as match_confidence,
        true as is_primary_record
    from {{ left.relation }} as l
    left join {{ pairs }} as p on p.{{ left.id }} = l.{{ left.id }}

    union all

    select
        case
            when matched.{{ left.id }} is not null
                then {{ surrogate_key([matched_system, 'matched.' ~ left.id]) }}
            else {{ surrogate_key([right_system, 'r.' ~ right.id]) }}
        end as {{ key_column }},
        {{ right_system }} as source_system,
        r.{{ right.id }} as source_record_id,
        matched.{{ left.id }} as {{ left.column }},
        r.{{ right.id }} as {{ right.column }},
        coalesce(matched.match_method, '{{ right.unmatched }}') as match_method,
        cast(matched.match_confidence as {{ ps_type('number') }}) as match_confidence,
        coalesce(matched.is_primary_record, true) as is_primary_record
    from {{ right.relation }} as r
    left join (
        select {{ left.id }}, {{ right.id }}, match_method, match_confidence, true as is_primary_record
        from {{ pairs }}
        union all
        select {{ left.id }}, {{ right.id }}, match_method, match_confidence, false
        from {{ duplicates }}
    ) as matched on matched.{{ right.id }} = r.{{ right.id }}
    {%- if system_column %}
    left join {{ left.relation }} as matched_left on matched_left.{{ left.id }} = matched.{{ left.id }}
    {%- endif %}
{%- endmacro %}
