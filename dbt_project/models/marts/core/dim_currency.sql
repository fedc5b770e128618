{#- Grain: one row per ISO currency code known to the ERP, plus the reporting currency.
    The rate columns are the conversion to the reporting currency on as_of_date; the full daily
    history is dim_currency_rates_daily. -#}
with erp_currencies as (
    select
        currency_code,
        min(currency_id) as erp_currency_id,
        min(currency_name) as currency_name,
        max(case when is_base_currency then 1 else 0 end) = 1 as is_erp_base_currency,
        min(case when is_deleted then 1 else 0 end) = 1 as is_deleted
    from {{ ref('int_erp_currencies') }}
    where currency_code is not null
    group by currency_code
),

all_currencies as (
    select * from erp_currencies

    union all

    select
        cast('{{ var("reporting_currency") }}' as {{ ps_type('string') }}),
        cast(null as {{ ps_type('string') }}),
        cast(null as {{ ps_type('string') }}),
        false,
        false
    where '{{ var("reporting_currency") }}' not in (select currency_code from erp_currencies)
),

as_of_rates as (
    select *
    from {{ ref('int_exchange_rates_daily') }}
    where date_day = {{ as_of_date() }}
)

select
    all_currencies.currency_code,
    all_currencies.erp_currency_id,
    all_currencies.currency_name,
    all_currencies.is_erp_base_currency,
    all_currencies.currency_code = '{{ var("reporting_currency") }}' as is_reporting_currency,
    as_of_rates.exchange_rate as as_of_rate_to_reporting,
    as_of_rates.rate_date as as_of_rate_date,
    as_of_rates.rate_method as as_of_rate_method,
    as_of_rates.exchange_rate is not null as has_rates_to_reporting,
    all_currencies.is_deleted
from all_currencies
left join as_of_rates on as_of_rates.currency_code = all_currencies.currency_code
