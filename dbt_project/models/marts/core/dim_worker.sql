{#- Grain: one row per person and version (worker_key, valid_from): type-2 history of role,
    cost rate, cost center, location, FTE and employment status over [valid_from, valid_to).

    A new version starts on every effective date of the worker's Workday job history or cost
    rates; each version carries the job-history row and the cost rate in force that day (a
    worker's first cost rate also covers the versions before it: cost_rate_effective_date
    after valid_from marks that back-fill).
    Before a worker's first job-history row the attributes fall back to the Workday worker
    snapshot (employment status from isActive; cost center and FTE are only in the job
    history: Workday's worker resource has neither). region is the region of the worker's
    current location (seed work_location_countries). People known only to the PSA (psa_only) get a
    single open version from the PSA user record, so every time entry finds its person.
    Deleted Workday rows do not start versions; people gone from Workday are flagged. -#}
with identity as (
    select * from {{ ref('int_worker_identity') }}
),

people as (
    select
        worker_key,
        max(case when source_system = 'workday' then source_record_id end) as workday_worker_id,
        max(case when source_system in {{ ps_role_in('psa') }} and is_primary_record then source_record_id end)
            as kantata_user_id,
        max(case when source_system in {{ ps_role_in('psa') }} and is_primary_record then source_system end)
            as psa_platform,
        cast(sum(case when source_system in {{ ps_role_in('psa') }} then 1 else 0 end) as {{ ps_type('integer') }})
            as kantata_user_count,
        coalesce(
            max(case when source_system = 'workday' then match_method end),
            max(case when source_system in {{ ps_role_in('psa') }} then match_method end)
        ) as match_method,
        max(case when is_primary_record then match_confidence end) as match_confidence
    from identity
    group by worker_key
),

workers as (
    select * from {{ ref('stg_workday__workers') }}
),

users as (
    select * from {{ ref('int_psa_users') }}
),

job_history as (
    select
        worker_id,
        effective_date as valid_from,
        coalesce(
            lead(effective_date) over (partition by worker_id order by effective_date),
            {{ open_end_date() }}
        ) as valid_to,
        job_profile,
        business_title,
        cost_center,
        employment_status,
        fte,
        location
    from {{ ref('stg_workday__job_history') }}
    where not is_deleted and worker_id is not null and effective_date is not null
),

cost_rates as (
    select * from {{ ref('int_worker_cost_rates') }}
),

change_points as (
    select worker_id, valid_from from job_history
    union
    select worker_id, rate_effective_date from cost_rates
),

-- Workers with no dated history at all get one version from their hire date.
hr_versions as (
    select
        worker_id,
        valid_from,
        coalesce(
            lead(valid_from) over (partition by worker_id order by valid_from),
            {{ open_end_date() }}
        ) as valid_to
    from change_points

    union all

    select
        workers.worker_id,
        coalesce(workers.hire_date, cast('1900-01-01' as date)),
        {{ open_end_date() }}
    from workers
    where workers.worker_id not in (select change_points.worker_id from change_points)
),

hr_history as (
    select
        people.worker_key,
        versions.valid_from,
        versions.valid_to,
        coalesce(job_history.job_profile, workers.job_profile) as job_profile,
        coalesce(job_history.business_title, workers.business_title) as business_title,
        job_history.cost_center,
        coalesce(job_history.location, workers.location) as location,
        job_history.fte,
        coalesce(
            job_history.employment_status,
            case when workers.is_active then 'Active' when not workers.is_active then 'Terminated' end
        ) as employment_status,
        case when job_history.worker_id is not null then 'workday_job_history' else 'workday_worker' end
            as attributes_source,
        cost_rates.hourly_cost_rate,
        cost_rates.currency_code as cost_rate_currency_code,
        cost_rates.rate_effective_date as cost_rate_effective_date
    from hr_versions as versions
    inner join people on people.workday_worker_id = versions.worker_id
    left join workers on workers.worker_id = versions.worker_id
    left join job_history
        on job_history.worker_id = versions.worker_id
       and job_history.valid_from <= versions.valid_from
       and job_history.valid_to > versions.valid_from
    left join cost_rates
        on cost_rates.worker_id = versions.worker_id
       and cost_rates.valid_from <= versions.valid_from
       and cost_rates.valid_to > versions.valid_from
),

psa_only_history as (
    select
        people.worker_key,
        cast('1900-01-01' as date) as valid_from,
        {{ open_end_date() }} as valid_to,
        cast(null as {{ ps_type('string') }}) as job_profile,
        users.headline as business_title,
        cast(null as {{ ps_type('string') }}) as cost_center,
        cast(null as {{ ps_type('string') }}) as location,
        cast(null as {{ ps_type('number') }}) as fte,
        cast(null as {{ ps_type('string') }}) as employment_status,
        users.psa_platform || '_user' as attributes_source,
        cast(null as {{ ps_type('money') }}) as hourly_cost_rate,
        cast(null as {{ ps_type('string') }}) as cost_rate_currency_code,
        cast(null as date) as cost_rate_effective_date
    from people
    inner join users on users.psa_platform = people.psa_platform and users.user_id = people.kantata_user_id
    where people.workday_worker_id is null
),

history as (
    select * from hr_history
    union all
    select * from psa_only_history
)

select
    {{ surrogate_key(['history.worker_key', 'history.valid_from']) }} as worker_version_key,
    history.worker_key,
    people.workday_worker_id,
    workers.worker_wid as workday_worker_wid,
    people.kantata_user_id,
    people.kantata_user_count,
    people.match_method,
    people.match_confidence,
    people.workday_worker_id is not null as has_hr_record,
    people.kantata_user_id is not null as has_psa_user,
    coalesce(workers.worker_name, users.full_name) as worker_name,
    coalesce(workers.email, users.email) as email,
    locations.region,
    workers.hire_date,
    workers.termination_date,
    history.job_profile,
    history.business_title,
    history.cost_center,
    history.location,
    history.fte,
    history.employment_status,
    history.attributes_source,
    history.hourly_cost_rate,
    history.cost_rate_currency_code,
    history.cost_rate_effective_date,
    history.valid_from,
    history.valid_to,
    history.valid_from <= {{ as_of_date() }} and {{ as_of_date() }} < history.valid_to as is_current,
    coalesce(workers.is_deleted, users.is_deleted, false) as is_deleted
from history
inner join people on people.worker_key = history.worker_key
left join workers on workers.worker_id = people.workday_worker_id
left join users on users.psa_platform = people.psa_platform and users.user_id = people.kantata_user_id
left join {{ ref('work_location_countries') }} as locations
    on lower(locations.location) = lower(workers.location)
