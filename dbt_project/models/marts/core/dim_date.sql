{#- Grain: one row per calendar day from var date_spine_start to var date_spine_end.
    Weeks start on Monday (ISO). Days are the firm's calendar days (var firm_timezone);
    as-of flags compare with var as_of_date, never with the clock. -#}
with days as (
    select date_day from {{ ps_date_spine(var('date_spine_start'), var('date_spine_end')) }} as spine
)

select
    date_day,
    cast(extract(isodow from date_day) as integer) as day_of_week,
    cast(extract(isodow from date_day) as integer) < 6 as is_weekday,
    cast(extract(day from date_day) as integer) as day_of_month,
    cast({{ dbt.date_trunc('week', 'date_day') }} as date) as week_start_date,
    cast(extract(week from date_day) as integer) as iso_week_number,
    cast(extract(isoyear from date_day) as integer) as iso_year_number,
    cast({{ dbt.date_trunc('month', 'date_day') }} as date) as month_start_date,
    cast({{ dbt.last_day('date_day', 'month') }} as date) as month_end_date,
    cast(extract(month from date_day) as integer) as month_number,
    cast({{ dbt.date_trunc('quarter', 'date_day') }} as date) as quarter_start_date,
    cast(extract(quarter from date_day) as integer) as quarter_number,
    cast({{ dbt.date_trunc('year', 'date_day') }} as date) as year_start_date,
    cast(extract(year from date_day) as integer) as year_number,
    date_day <= {{ as_of_date() }} as is_on_or_before_as_of,
    cast({{ dbt.datediff('date_day', as_of_date(), 'day') }} as integer) as days_before_as_of
from days
