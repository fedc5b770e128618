{#- Grain: one row per worker and rate (worker_id, rate_effective_date). Workday cost rates are
    effective-dated points; each holds until the worker's next one: [valid_from, valid_to) with
    valid_to = the next effective date, or 9999-12-31 for the latest. A worker's first rate
    also covers the days before it (valid_from = 1900-01-01): people log time before HR
    records a rate, and the first known rate is the best cost for that work;
    rate_effective_date keeps the rate's own date. Deleted rows do not define a range,
    as they would cut the range of the rate before them. is_current is as of as_of_date. -#}
with cost_rates as (
    select *
    from {{ ref('stg_workday__cost_rates') }}
    where not is_deleted
      and worker_id is not null
      and effective_date is not null
),

ranged as (
    select
        worker_id,
        effective_date as rate_effective_date,
        case
            when row_number() over (partition by worker_id order by effective_date) = 1
                then {{ open_start_date() }}
            else effective_date
        end as valid_from,
        coalesce(
            lead(effective_date) over (partition by worker_id order by effective_date),
            {{ open_end_date() }}
        ) as valid_to,
        hourly_cost_rate,
        currency_code,
        rate_type
    from cost_rates
)

select
    {{ surrogate_key(['worker_id', 'rate_effective_date']) }} as worker_cost_rate_key,
    worker_id,
    rate_effective_date,
    valid_from,
    valid_to,
    hourly_cost_rate,
    currency_code,
    rate_type,
    valid_from <= {{ as_of_date() }} and {{ as_of_date() }} < valid_to as is_current
from ranged
