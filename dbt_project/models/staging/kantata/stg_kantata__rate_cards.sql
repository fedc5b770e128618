{#- Grain: one row per Kantata rate card (latest version); deleted cards kept, flagged.
    rates_json keeps the [{role, rate_in_cents}] list as JSON text; int_rate_card_rates
    unnests it. -#}
{%- set src = source('kantata', 'rate_cards') -%}
{%- set cols = ps_source_columns(src) -%}

with latest as (
    select * from {{ ps_latest_version(src) }} as latest_rows
)

select
    {{ ps_column(cols, 'id', 'rate_card_id', 'string') }},
    {{ ps_column(cols, 'title', 'rate_card_name', 'string') }},
    {{ ps_column(cols, 'currency', 'currency_code', 'string') }},
    {{ ps_column(cols, 'region', 'region', 'string') }},
    {{ ps_column(cols, 'effective_from', 'effective_from', 'date') }},
    {{ ps_column(cols, 'effective_to', 'effective_to', 'date') }},
    {{ ps_column(cols, 'rates', 'rates_json', 'string') }},
    {{ ps_column(cols, 'created_at', 'created_at', 'timestamp') }},
    {{ ps_lineage_columns(cols) }}
    {{ ps_pass_through_columns(cols, 'kantata_rate_cards_pass_through_columns') }}
from latest
