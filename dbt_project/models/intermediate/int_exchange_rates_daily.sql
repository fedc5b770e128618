{#- Grain: one row per day (date_spine_start..date_spine_end) and currency known to the ERP.
    exchange_rate converts one unit of currency_code into the reporting currency
    (var reporting_currency) on date_day:
      identity         the reporting currency itself: 1
      direct           NetSuite rate quoted against the reporting currency (base = reporting)
      inverse          1 / rate quoted the other way (transaction = reporting)
      currency_master  no dated rate at all: the currency record's rate, when the ERP base
                       currency is the reporting currency
    Dated rates are forward-filled over gaps (weekends, holidays, the future) and the first
    known rate is back-filled to the start of the spine, so a conversion is never null;
    rate_date tells which observation was used and is_filled whether it is another day's.
    Currencies with no path to the reporting currency have no rows (tested in dim_currency). -#}
{%- set reporting = "'" ~ var('reporting_currency') ~ "'" %}

with currency_refs as (
    select * from {{ ref('int_erp_currency_refs') }}
),

currencies as (
    select * from {{ ref('int_erp_currencies') }}
    where not is_deleted and currency_code is not null
),

quoted_rates as (
    select
        rates.exchange_rate_id,
        rates.effective_date,
        base.currency_code as base_currency_code,
        quoted.currency_code as transaction_currency_code,
        rates.exchange_rate
    from {{ ref('int_erp_exchange_rates') }} as rates
    inner join currency_refs as base on base.currency_ref = rates.base_currency_ref
    inner join currency_refs as quoted on quoted.currency_ref = rates.transaction_currency_ref
    where not rates.is_deleted
      and rates.exchange_rate > 0
      and rates.effective_date is not null
),

observations as (
    select
        transaction_currency_code as currency_code,
        effective_date as rate_date,
        exchange_rate as rate_to_reporting,
        'direct' as rate_method,
        1 as method_rank,
        exchange_rate_id
    from quoted_rates
    where base_currency_code = {{ reporting }}
      and transaction_currency_code <> {{ reporting }}

    union all

    select
        base_currency_code,
        effective_date,
        1.0 / exchange_rate,
        'inverse',
        2,
        exchange_rate_id
    from quoted_rates
    where transaction_currency_code = {{ reporting }}
      and base_currency_code <> {{ reporting }}
),

-- One observation per currency and day: a direct quote beats an inverse one; among
-- duplicates the latest record (highest id) wins.
daily_observations as (
    select currency_code, rate_date, rate_to_reporting, rate_method
    from (
        select
            observations.*,
            row_number() over (
                partition by currency_code, rate_date
                order by method_rank asc, exchange_rate_id desc
            ) as observation_rank
        from observations
    ) as ranked
    where observation_rank = 1
),

observation_ranges as (
    select
        currency_code,
        rate_date,
        rate_to_reporting,
        rate_method,
        case
            when row_number() over (partition by currency_code order by rate_date) = 1
                then {{ open_start_date() }}
            else rate_date
        end as covers_from,
        coalesce(
            lead(rate_date) over (partition by currency_code order by rate_date),
            {{ open_end_date() }}
        ) as covers_to
    from daily_observations
),

erp_base_currency as (
    select min(currency_code) as currency_code
    from currencies
    where is_base_currency
),

master_rates as (
    select
        currencies.currency_code,
        cast(currencies.exchange_rate_to_base as {{ ps_type('number') }}) as rate_to_reporting,
        coalesce({{ to_firm_date('currencies.source_updated_at') }}, {{ as_of_date() }}) as rate_date
    from currencies
    inner join erp_base_currency on erp_base_currency.currency_code = {{ reporting }}
    where currencies.exchange_rate_to_base > 0
      and currencies.currency_code <> {{ reporting }}
      and currencies.currency_code not in (select daily_observations.currency_code from daily_observations)
),

days as (
    select date_day from {{ ps_date_spine(var('date_spine_start'), var('date_spine_end')) }} as spine
),

reporting_currency_days as (
    select
        days.date_day,
        {{ reporting }} as currency_code,
        cast(1 as {{ ps_type('number') }}) as exchange_rate,
        days.date_day as rate_date,
        'identity' as rate_method
    from days
),

observed_currency_days as (
    select
        days.date_day,
        ranges.currency_code,
        cast(ranges.rate_to_reporting as {{ ps_type('number') }}) as exchange_rate,
        ranges.rate_date,
        ranges.rate_method
    from days
    inner join observation_ranges as ranges
        on ranges.covers_from <= days.date_day
       and ranges.covers_to > days.date_day
),

master_currency_days as (
    select
        days.date_day,
        master_rates.currency_code,
        master_rates.rate_to_reporting as exchange_rate,
        master_rates.rate_date,
        'currency_master' as rate_method
    from days
    cross join master_rates
),

all_days as (
    select * from reporting_currency_days
    union all
    select * from observed_currency_days
    union all
    select * from master_currency_days
)

select
    date_day,
    currency_code,
    cast({{ reporting }} as {{ ps_type('string') }}) as reporting_currency_code,
    exchange_rate,
    rate_date,
    rate_method,
    rate_date <> date_day as is_filled
from all_days
