{#- Grain: one row per Kantata rate card version (latest version of the row); deleted ones kept,
    flagged. A rate card is one currency of a rate card set; a version holds its role rates
    from its set version's effective date until the day before the card's next version
    (effective_to, null for the latest). rates_json keeps the version's rate card roles as
    JSON ([{role_name, rate, ...}], rate in cents per hour); int_rate_card_rates unnests it. -#}
{%- set src = source('kantata', 'rate_cards') -%}
{%- set cols = ps_source_columns(src) -%}

with latest as (
    select * from {{ ps_latest_version(src) }} as latest_rows
),

versions as (
    select
        {{ ps_column(cols, 'id', 'rate_card_version_id', 'string') }},
        {{ ps_column(cols, 'rate_card_id', 'rate_card_id', 'string') }},
        {{ ps_column(cols, 'rate_card_rate_card_set_title', 'rate_card_name', 'string') }},
        {{ ps_column(cols, 'rate_card_currency', 'currency_code', 'string') }},
        {{ ps_column(cols, 'rate_card_set_version_effective_date', 'effective_from', 'date') }},
        {{ ps_column(cols, 'rate_card_roles', 'rates_json', 'string') }},
        {{ ps_column(cols, 'created_at', 'created_at', 'timestamp') }},
        {{ ps_lineage_columns(cols) }}
        {{ ps_pass_through_columns(cols, 'kantata_rate_cards_pass_through_columns') }}
    from latest
)

select
    *,
    cast({{ dbt.dateadd('day', -1,
        'lead(effective_from) over (partition by rate_card_id, is_deleted order by effective_from)') }} as date)
        as effective_to
from versions
