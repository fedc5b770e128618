{#- Grain: one row per won, live opportunity (opportunity_id).

    days_to_psa = the firm's day the delivery project's Kantata workspace was created - the
                  deal's close date (the day it was won)
    days_to_erp = the same for the project's NetSuite job
    days_to_setup = the later of the two, once both exist (null while one is missing)
    setup_status: complete (both), psa_only, erp_only or pending (neither yet);
    days_open = as_of_date - close date, the age of a setup that is still pending.
    Negative days mean the record was created before the deal was marked won (set up ahead of
    signature). -#}
with won as (
    select *
    from {{ ref('fct_opportunities') }}
    where is_won
      and not is_deleted
),

setup as (
    select
        won.opportunity_id,
        won.opportunity_name,
        won.customer_key,
        won.project_key,
        won.legal_entity_key,
        won.close_date as won_date,
        {{ to_firm_date('projects.psa_created_at') }} as psa_created_date,
        {{ to_firm_date('projects.erp_created_at') }} as erp_created_date
    from won
    left join {{ ref('dim_project') }} as projects on projects.project_key = won.project_key
)

select
    opportunity_id,
    opportunity_name,
    customer_key,
    project_key,
    legal_entity_key,
    won_date,
    psa_created_date,
    erp_created_date,
    cast({{ dbt.datediff('won_date', 'psa_created_date', 'day') }} as {{ ps_type('integer') }}) as days_to_psa,
    cast({{ dbt.datediff('won_date', 'erp_created_date', 'day') }} as {{ ps_type('integer') }}) as days_to_erp,
    cast(case
        when psa_created_date is null or erp_created_date is null then null
        when psa_created_date >= erp_created_date then {{ dbt.datediff('won_date', 'psa_created_date', 'day') }}
        else {{ dbt.datediff('won_date', 'erp_created_date', 'day') }}
    end as {{ ps_type('integer') }}) as days_to_setup,
    cast(case
        when psa_created_date is not null and erp_created_date is not null then 'complete'
        when psa_created_date is not null then 'psa_only'
        when erp_created_date is not null then 'erp_only'
        else 'pending'
    end as {{ ps_type('string') }}) as setup_status,
    cast({{ dbt.datediff('won_date', as_of_date(), 'day') }} as {{ ps_type('integer') }}) as days_open
from setup
