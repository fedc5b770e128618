{#- Grain: one row per rate card version and role (rate_card_id, role, valid_from): the bill
    rate per hour in the card's currency from the version's effective date, over
    [valid_from, valid_to) (until the card's next version). A workspace names its rate card
    (currency card of a Kantata rate card set); a time entry's standard rate is the row of its
    project's rate_card_id and its worker's role (dim_worker.job_profile) in force on the work
    date. Deleted cards are kept, flagged. -#}
select
    rate_card_rate_key,
    rate_card_id,
    rate_card_version_id,
    rate_card_name,
    role,
    currency_code,
    bill_rate,
    effective_from,
    effective_to,
    valid_from,
    valid_to,
    valid_from <= {{ as_of_date() }} and {{ as_of_date() }} < valid_to and not is_deleted as is_current,
    is_deleted
from {{ ref('int_rate_card_rates') }}
