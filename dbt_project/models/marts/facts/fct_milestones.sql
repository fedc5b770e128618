{#- Grain: one row per PSA milestone (a Kantata story of type milestone, or a Certinia milestone; milestone_id); deleted ones
    kept, flagged. amount is the milestone's budget: on fixed-fee and milestone contracts the
    fee billed when it is completed (is_billing_milestone), in the workspace's currency.
    completion_date is the firm's day of completed_at; amounts convert at the completion date
    (the due date while open). Small (a few per project): rebuilt in full every run. -#}
with milestones as (
    select *
    from {{ ref('int_psa_milestones') }}
    where milestone_id is not null
      and lower(story_type) = 'milestone'
),

resolved as (
    select
        milestones.*,
        {{ ps_project_context_columns('projects') }},
        coalesce(projects.psa_currency_code, projects.currency_code) as currency_code,
        projects.functional_currency_code,
        {{ to_firm_date('milestones.completed_at') }} as completion_date,
        coalesce(
            -- Kantata's completed states, and Certinia's Approved (pse__Milestone__c.pse__Status__c:
            -- Planned, Open, Approved, Canceled; approval is what releases it for billing).
            lower(milestones.milestone_state) in ('completed', 'done', 'accepted', 'approved'),
            false
        ) and milestones.completed_at is not null as is_completed
    from milestones
    {{ ps_join_project_context('projects', 'milestones.project_id', 'milestones.psa_platform') }}
),

with_rates as (
    select
        resolved.*,
        coalesce(resolved.completion_date, resolved.due_date) as valuation_date,
        {{ ps_fact_rate_columns() }}
    from resolved
    {{ ps_join_fact_rates('resolved.currency_code', 'resolved.functional_currency_code',
                          'coalesce(resolved.completion_date, resolved.due_date)') }}
)

select
    cast(milestone_id as {{ ps_type('string') }}) as milestone_id,
    {{ ps_fact_project_columns() }},
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
    {{ ps_converted_amount_columns(functional=[('budget_amount', 'amount_functional')],
                                   reporting=[('budget_amount', 'amount_reporting')]) }},
    {{ ps_record_state_columns(with_deleted_at=false) }}
from with_rates
