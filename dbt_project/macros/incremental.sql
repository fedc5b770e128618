{#- The rows of a staging model an incremental fact must (re)build (DECISIONLOG.md,
    "Incremental facts"). A condition on the staging rows, for use in is_incremental():

      1. changed: _loaded_at after the fact's newest loaded_at, minus the look-back
         (var incremental_lookback_minutes). Ingestion stamps _loaded_at whenever a row's
         content or delete flag changes, whatever the age of the source's own change time,
         so late-arriving changes are never missed;
      2. deleted but still live in the fact: hard deletes from a delete feed or a snapshot
         flag the raw row without restamping it, and must not stay stuck as live rows;
      3. unresolved: rows stored with a lookup that had no answer yet (reprocess_when, a
         condition on the fact's columns), so a late dimension record fills them in.

    key: the fact's unique key (same name in staging and in the fact). -#}
{% macro incremental_changes(key, reprocess_when=none, loaded_at='_loaded_at', is_deleted='is_deleted') -%}
  {%- set lookback = var('incremental_lookback_minutes', 0) | int -%}
  {%- set newest = "coalesce(max(loaded_at), cast('1900-01-01' as " ~ ps_type('timestamp') ~ "))" -%}
  (
    {{ loaded_at }} > (
      select {{ dbt.dateadd('minute', -lookback, newest) if lookback else newest }}
      from {{ this }}
    )
    or ({{ is_deleted }} and {{ key }} in (select {{ key }} from {{ this }} where not is_deleted))
    {%- if reprocess_when %}
    or {{ key }} in (select {{ key }} from {{ this }} where {{ reprocess_when }})
    {%- endif %}
  )
{%- endmacro %}

{#- The source rows of an incremental fact with a key: every row with a key on a full build,
    the rows incremental_changes selects on an incremental one. -#}
{% macro incremental_source(model, key, reprocess_when=none) -%}
    select *
    from {{ ref(model) }}
    where {{ key }} is not null
    {%- if is_incremental() %}
      and {{ incremental_changes(key, reprocess_when=reprocess_when) }}
    {%- endif %}
{%- endmacro %}
