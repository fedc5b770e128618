{#- Grain: one row per rate card and role (rate_card_id, role): the bill rate per hour in the
    card's currency for its region; the range [valid_from, valid_to) is when the card is
    offered to new projects. A workspace keeps the card it was given, so a time entry's
    standard rate is the row of its project's rate_card_id and its worker's role on the work
    date (dim_worker.job_profile). Deleted cards are kept, flagged. -#}
select
    rate_card_rate_key,
    rate_card_id,
    rate_card_name,
    role,
    region,
    currency_code,
    bill_rate,
    effective_from,
    effective_to,
    valid_from,
    valid_to,
    valid_from <= {{ as_of_date() }} and {{ as_of_date() }} < valid_to and not is_deleted as is_current,
    is_deleted
from {{ ref('int_rate_card_rates') }}
