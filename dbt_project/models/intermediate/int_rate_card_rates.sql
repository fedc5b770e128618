{#- Grain: one row per rate card and role. Kantata rate cards carry their bill rates as a JSON
    list [{role, rate_in_cents}]; this unnests it (adapter-dispatched, see macros/json.sql).
    A role listed twice on one card keeps its last entry, as Kantata applies the last.
    Ranges are half-open: valid_from = effective_from, valid_to = the day after effective_to
    (effective_to is the card's last day), 9999-12-31 when the card has no end. -#}
with rate_cards as (
    select * from {{ ref('stg_kantata__rate_cards') }}
    where rate_card_id is not null
),

rate_elements as (
    {{ unnest_json_array('rate_cards', 'rates_json', ['rate_card_id'],
                         {'role': 'string', 'rate_in_cents': 'number'}) }}
),

latest_entry_per_role as (
    select
        rate_card_id,
        trim(role) as role,
        rate_in_cents,
        row_number() over (partition by rate_card_id, trim(role) order by element_index desc) as entry_rank
    from rate_elements
    where role is not null and trim(role) <> ''
)

select
    {{ surrogate_key(['cards.rate_card_id', 'rates.role']) }} as rate_card_rate_key,
    cards.rate_card_id,
    cards.rate_card_name,
    rates.role,
    cards.region,
    cards.currency_code,
    {{ ps_cents_to_money('rates.rate_in_cents') }} as bill_rate,
    cards.effective_from,
    cards.effective_to,
    cards.effective_from as valid_from,
    coalesce(
        cast({{ dbt.dateadd('day', 1, 'cards.effective_to') }} as date),
        {{ open_end_date() }}
    ) as valid_to,
    cards.is_deleted
from latest_entry_per_role as rates
inner join rate_cards as cards on cards.rate_card_id = rates.rate_card_id
where rates.entry_rank = 1
