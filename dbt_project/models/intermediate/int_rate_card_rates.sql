{#- Grain: one row per rate card version and role (rate_card_id, role, valid_from), from every
    PSA of the estate. Kantata prices a role on a rate card version (its rate card roles, rate in cents per hour, as a
    JSON list [{role_name, rate}]); this unnests it (adapter-dispatched, see macros/json.sql).
    A role listed twice on one version keeps its last entry.
    Ranges are half-open: valid_from = the version's effective_from, valid_to = the day after
    effective_to (the day before the card's next version), 9999-12-31 for the latest.     A Certinia rate card (pse__Rate_Card__c) is one role's rate already (bill rate in money,
    not cents), over its start and end dates: one row as it is, under the id of the cards of its
    scope and currency (certinia_rate_card_id), which is what a Certinia project names. -#}
{%- if ps_declares('kantata') %}
with rate_cards as (
    select * from {{ ref('stg_kantata__rate_cards') }}
    where rate_card_id is not null and rate_card_version_id is not null
),

rate_elements as (
    {{ unnest_json_array('rate_cards', 'rates_json', ['rate_card_version_id'],
                         {'role_name': 'string', 'rate': 'number'}) }}
),

latest_entry_per_role as (
    select
        rate_card_version_id,
        trim(role_name) as role,
        rate as rate_in_cents,
        row_number() over (partition by rate_card_version_id, trim(role_name) order by element_index desc)
            as entry_rank
    from rate_elements
    where role_name is not null and trim(role_name) <> ''
)

select
    {{ surrogate_key(['cards.rate_card_version_id', 'rates.role']) }} as rate_card_rate_key,
    cards.rate_card_id,
    cards.rate_card_version_id,
    cards.rate_card_name,
    rates.role,
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
inner join rate_cards as cards on cards.rate_card_version_id = rates.rate_card_version_id
where rates.entry_rank = 1
{%- endif %}
{%- if ps_declares('kantata') and ps_declares('certinia') %}

union all
{%- endif %}
{%- if ps_declares('certinia') %}

select
    {{ surrogate_key(['rate_card_version_id', 'trim(role_name)']) }} as rate_card_rate_key,
    {{ certinia_rate_card_id('region_id', 'practice_id', 'account_id', 'currency_code') }} as rate_card_id,
    rate_card_version_id,
    rate_card_name,
    trim(role_name) as role,
    currency_code,
    cast(bill_rate as {{ ps_type('money') }}) as bill_rate,
    effective_from,
    effective_to,
    effective_from as valid_from,
    coalesce(cast({{ dbt.dateadd('day', 1, 'effective_to') }} as date), {{ open_end_date() }}) as valid_to,
    is_deleted
from {{ ref('stg_certinia__rate_cards') }}
where rate_card_id is not null and role_name is not null and trim(role_name) <> '' and effective_from is not null
{%- endif %}
