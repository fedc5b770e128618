{#- Grain: one row per NetSuite subsidiary (legal entity); deleted kept, flagged.
    currency_ref is NetSuite's currency reference (an internal id; see int_currency_refs). -#}
{%- set src = source('netsuite', 'subsidiaries') -%}
{%- set cols = ps_source_columns(src) -%}

with latest as (
    select * from {{ ps_latest_version(src) }} as latest_rows
)

select
    {{ ps_column(cols, 'id', 'subsidiary_id', 'string') }},
    {{ ps_column(cols, 'name', 'subsidiary_name', 'string') }},
    {{ ps_column(cols, 'country', 'country', 'string') }},
    {{ ps_column(cols, 'currency', 'currency_ref', 'string') }},
    coalesce({{ ps_column_expr(cols, 'isinactive', 'boolean') }}, false) as is_inactive,
    {{ ps_lineage_columns(cols) }}
    {{ ps_pass_through_columns(cols, 'netsuite_subsidiaries_pass_through_columns') }}
from latest
