{#- Grain: one row per Kantata milestone (story of type milestone, milestone_id); deleted ones
    kept, flagged. amount is the milestone's budget: on fixed-fee and milestone contracts the
    fee billed when it is completed (is_billing_milestone), in the workspace's currency.
    completion_date is the firm's day of completed_at; amounts convert at the completion date
    (the due date while open). Small (a few per project): rebuilt in full every run. -#}
with milestones as (
    select *
    from {{ ref('stg_kantata__milestones') }}
    where milestone_id is not null
      and lower(story_type) = 'milestone'
),

workspace_projects as (
    select source_record_id as psa_project_id, project_key
    from {{ ref('int_project_identity') }}
    where source_system = 'kantata'
),

projects as (
    select project_key, customer_key, contract_key, legal_entity_key, billing_model, psa_currency_code,
           currency_code
    from {{ ref('dim_project') }}
),

legal_entities as (
    select legal_entity_key, functional_currency_code
    from {{ ref('dim_legal_entity') }}
),

daily_rates as (
    select date_day, currency_code, exchange_rate, rate_date
    from {{ ref('dim_currency_rates_daily') }}
),

resolved as (
    select
        milestones.*,
        workspace_projects.project_key,
        projects.customer_key,
        projects.contract_key,
        projects.legal_entity_key,
        projects.billing_model,
        coalesce(projects.psa_currency_code, projects.currency_code) as currency_code,
        legal_entities.functional_currency_code,
        {{ to_firm_date('milestones.completed_at') }} as completion_date,
        coalesce(
            lower(milestones.milestone_state) in ('completed', 'done', 'accepted'),
            false
        ) and milestones.completed_at is not null as is_completed
    from milestones
    left join workspace_projects on workspace_projects.psa_project_id = milestones.project_id
    left join projects on projects.project_key = workspace_projects.project_key
    left join legal_entities on legal_entities.legal_entity_key = projects.legal_entity_key
),

with_rates as (
    select
        resolved.*,
        coalesce(resolved.completion_date, resolved.due_date) as valuation_date,
        transaction_fx.exchange_rate as transaction_rate,
        transaction_fx.rate_date as transaction_rate_date,
        functional_fx.exchange_rate as functional_rate
    from resolved
    left join daily_rates as transaction_fx
        on transaction_fx.currency_code = resolved.currency_code
       and transaction_fx.date_day = coalesce(resolved.completion_date, resolved.due_date)
    left join daily_rates as functional_fx
        on functional_fx.currency_code = resolved.functional_currency_code
       and functional_fx.date_day = coalesce(resolved.completion_date, resolved.due_date)
)

select
    cast(milestone_id as {{ ps_type('string') }}) as milestone_id,
    project_key,
    cast(project_id as {{ ps_type('string') }}) as psa_project_id,
    customer_key,
    contract_key,
    legal_entity_key,
    billing_model,
    milestone_name,
    milestone_state,
    is_completed,
    coalesce(billing_model in ('Fixed Fee', 'Milestone'), false) as is_billing_milestone,
    due_date,
    completed_at,
    completion_date,
    case when is_completed then {{ month_start('completion_date') }} end as month_start_date,
    cast(currency_code as {{ ps_type('string') }}) as currency_code,
    budget_amount as amount,
    functional_currency_code,
    cast(transaction_rate / nullif(functional_rate, 0) as {{ ps_type('number') }}) as functional_exchange_rate,
    {{ ps_convert_amount('budget_amount', 'transaction_rate', 'functional_rate') }} as amount_functional,
    cast('{{ var("reporting_currency") }}' as {{ ps_type('string') }}) as reporting_currency_code,
    transaction_rate as exchange_rate_to_reporting,
    transaction_rate_date as exchange_rate_date,
    {{ ps_convert_amount('budget_amount', 'transaction_rate') }} as amount_reporting,
    source_updated_at,
    _loaded_at as loaded_at,
    is_deleted,
    is_quarantined,
    quarantined_at,
    quarantine_rule
from with_rates
