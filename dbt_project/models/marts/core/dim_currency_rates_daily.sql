{#- Grain: one row per day and currency (date_day, currency_code): the rate converting one unit
    of currency_code into the reporting currency that day, forward-filled over gaps
    (see int_exchange_rates_daily). Facts convert with
    amount * rate(transaction currency) for the reporting amount and
    amount * rate(transaction) / rate(functional) for the functional amount. -#}
select
    date_day,
    currency_code,
    reporting_currency_code,
    exchange_rate,
    rate_date,
    rate_method,
    is_filled
from {{ ref('int_exchange_rates_daily') }}
