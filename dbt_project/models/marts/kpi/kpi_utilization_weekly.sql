{#- Grain: one row per person and ISO week (worker_key, week_start_date), from the first week
    with logged time up to the week of var as_of_date.

    billable_utilization = billable_hours / capacity_hours
    capacity_hours       = sum over the week's weekdays (up to as_of_date) on which the person
                           is employed of: var standard_weekly_hours / 5 x FTE, minus a public
                           holiday of the country of their work location (seeds holidays and
                           work_location_countries), minus time off (seed time_off), floored at 0
    Employment and FTE come from the dim_worker version holding the day (a status of
    Terminated, Leave or Inactive gives no capacity). People only the PSA knows have no HR
    record: they count as full-time employed in the weeks they logged time.
    Hours: every live time entry except rejected ones (draft and submitted time is work done).
    Utilization is null when there is no capacity (e.g. time logged before the hire date). -#}
{%- set daily_hours = "cast(" ~ var('standard_weekly_hours') ~ " as " ~ ps_type('number') ~ ") / 5" %}

with time_entries as (
    select worker_key, week_start_date, hours, billable_hours
    from {{ ref('fct_time_entries') }}
    where not is_deleted
      and coalesce(approval_status, '') <> 'rejected'
      and worker_key is not null
      and work_date <= {{ as_of_date() }}
),

logged as (
    select
        worker_key,
        week_start_date,
        sum(hours) as logged_hours,
        sum(billable_hours) as billable_hours
    from time_entries
    group by worker_key, week_start_date
),

days as (
    select date_day, week_start_date
    from {{ ref('dim_date') }}
    where is_weekday
      and date_day <= {{ as_of_date() }}
      and date_day >= (select min(time_entries.week_start_date) from time_entries)
),

versions as (
    select
        worker_key,
        workday_worker_id,
        valid_from,
        valid_to,
        location,
        fte,
        attributes_source,
        case
            when attributes_source = 'kantata_user' then true
            when lower(employment_status) like '%terminat%' or lower(employment_status) like '%leave%'
                or lower(employment_status) like '%inactive%' then false
            else employment_status is not null
        end as is_employed
    from {{ ref('dim_worker') }}
),

employed_days as (
    select
        versions.worker_key,
        versions.workday_worker_id,
        days.date_day,
        days.week_start_date,
        versions.location,
        {{ daily_hours }} * coalesce(versions.fte, 1.0) as standard_hours
    from versions
    inner join days
        on days.date_day >= versions.valid_from
       and days.date_day < versions.valid_to
    where versions.is_employed
      -- people without an HR record: only the weeks they logged time in
      and (versions.attributes_source <> 'kantata_user'
           or exists (select 1 from logged
                      where logged.worker_key = versions.worker_key
                        and logged.week_start_date = days.week_start_date))
),

time_off as (
    select workday_worker_id, time_off_date, sum(hours) as hours
    from {{ ref('time_off') }}
    group by workday_worker_id, time_off_date
),

daily_capacity as (
    select
        employed_days.worker_key,
        employed_days.week_start_date,
        employed_days.standard_hours,
        case when holidays.holiday_date is not null then employed_days.standard_hours else 0 end
            as holiday_hours,
        coalesce(time_off.hours, 0) as time_off_hours
    from employed_days
    left join {{ ref('work_location_countries') }} as locations
        on lower(locations.location) = lower(employed_days.location)
    left join {{ ref('holidays') }} as holidays
        on holidays.country_code = locations.country_code
       and holidays.holiday_date = employed_days.date_day
    left join time_off
        on time_off.workday_worker_id = employed_days.workday_worker_id
       and time_off.time_off_date = employed_days.date_day
),

capacity as (
    select
        worker_key,
        week_start_date,
        count(*) as employed_days,
        sum(standard_hours) as standard_hours,
        sum(holiday_hours) as holiday_hours,
        sum(case when time_off_hours > standard_hours - holiday_hours
                 then standard_hours - holiday_hours else time_off_hours end) as time_off_hours
    from daily_capacity
    group by worker_key, week_start_date
),

worker_weeks as (
    select
        coalesce(capacity.worker_key, logged.worker_key) as worker_key,
        coalesce(capacity.week_start_date, logged.week_start_date) as week_start_date,
        coalesce(capacity.employed_days, 0) as employed_days,
        coalesce(capacity.standard_hours, 0) as standard_hours,
        coalesce(capacity.holiday_hours, 0) as holiday_hours,
        coalesce(capacity.time_off_hours, 0) as time_off_hours,
        coalesce(logged.logged_hours, 0) as logged_hours,
        coalesce(logged.billable_hours, 0) as billable_hours
    from capacity
    full outer join logged
        on logged.worker_key = capacity.worker_key
       and logged.week_start_date = capacity.week_start_date
),

week_versions as (
    select worker_key, valid_from, valid_to, worker_name, job_profile, location, fte
    from {{ ref('dim_worker') }}
)

select
    worker_weeks.worker_key,
    worker_weeks.week_start_date,
    week_versions.worker_name,
    week_versions.job_profile,
    week_versions.location,
    week_versions.fte,
    cast(worker_weeks.employed_days as {{ ps_type('integer') }}) as employed_days,
    cast(worker_weeks.standard_hours as {{ ps_type('number') }}) as standard_hours,
    cast(worker_weeks.holiday_hours as {{ ps_type('number') }}) as holiday_hours,
    cast(worker_weeks.time_off_hours as {{ ps_type('number') }}) as time_off_hours,
    cast(worker_weeks.standard_hours - worker_weeks.holiday_hours - worker_weeks.time_off_hours
         as {{ ps_type('number') }}) as capacity_hours,
    cast(worker_weeks.logged_hours as {{ ps_type('number') }}) as logged_hours,
    cast(worker_weeks.billable_hours as {{ ps_type('number') }}) as billable_hours,
    cast(worker_weeks.logged_hours - worker_weeks.billable_hours as {{ ps_type('number') }}) as non_billable_hours,
    {{ ps_ratio('worker_weeks.billable_hours',
                'worker_weeks.standard_hours - worker_weeks.holiday_hours - worker_weeks.time_off_hours') }}
        as billable_utilization,
    {{ ps_ratio('worker_weeks.logged_hours',
                'worker_weeks.standard_hours - worker_weeks.holiday_hours - worker_weeks.time_off_hours') }}
        as total_utilization
from worker_weeks
-- the person's version on the week's Friday (a role change mid-week shows from that week)
left join week_versions
    on week_versions.worker_key = worker_weeks.worker_key
   and cast({{ dbt.dateadd('day', 4, 'worker_weeks.week_start_date') }} as date) >= week_versions.valid_from
   and cast({{ dbt.dateadd('day', 4, 'worker_weeks.week_start_date') }} as date) < week_versions.valid_to
