{#- Grain: one row per project and month (project_key, month_start_date), months up to
    var as_of_date; all amounts in the reporting currency (costs and revenue of one project can
    be in different currencies: a worker's cost rate is in their own).

    margin = recognized_revenue - labour_cost - expense_cost;  margin_pct = margin / recognized_revenue
    recognized_revenue = labour_revenue + rebilled_expense_revenue
      labour_revenue   time and materials (or unknown model): approved billable time at its
                       bill rate, in the month worked; fixed fee and milestone contracts: the
                       amount of each milestone in the month it was completed
      rebilled_expense_revenue  approved billable expenses, at cost, in the month incurred
    labour_cost  = every live, not rejected hour x the worker's cost rate on the work date
    expense_cost = every live approved expense (billable or not)
    hours_worked and the labour revenue also feed kpi_effective_bill_rate. -#}
with projects as (
    select project_key, billing_model
    from {{ ref('dim_project') }}
),

time_entries as (
    select
        time_entries.project_key,
        time_entries.month_start_date,
        time_entries.hours,
        time_entries.billable_hours,
        time_entries.cost_amount_reporting,
        case
            when time_entries.is_approved and time_entries.is_billable
                 and coalesce(projects.billing_model, 'Time and Materials') = 'Time and Materials'
                then time_entries.billable_amount_reporting
            else 0
        end as labour_revenue_reporting,
        case when time_entries.is_approved then time_entries.billable_hours else 0 end as approved_billable_hours,
        case when time_entries.is_approved then time_entries.standard_amount_reporting else 0 end
            as approved_standard_amount_reporting
    from {{ ref('fct_time_entries') }} as time_entries
    left join projects on projects.project_key = time_entries.project_key
    where not time_entries.is_deleted
      and coalesce(time_entries.approval_status, '') <> 'rejected'
      and time_entries.project_key is not null
      and time_entries.work_date <= {{ as_of_date() }}
),

time_by_month as (
    select
        project_key,
        month_start_date,
        sum(hours) as hours_worked,
        sum(billable_hours) as billable_hours,
        sum(approved_billable_hours) as approved_billable_hours,
        sum(labour_revenue_reporting) as time_revenue_reporting,
        sum(approved_standard_amount_reporting) as standard_value_reporting,
        sum(cost_amount_reporting) as labour_cost_reporting
    from time_entries
    group by project_key, month_start_date
),

milestones_by_month as (
    select
        project_key,
        month_start_date,
        sum(amount_reporting) as milestone_revenue_reporting
    from {{ ref('fct_milestones') }}
    where not is_deleted
      and is_completed
      and is_billing_milestone
      and project_key is not null
      and completion_date <= {{ as_of_date() }}
    group by project_key, month_start_date
),

expenses_by_month as (
    select
        project_key,
        month_start_date,
        sum(case when is_billable then amount_reporting else 0 end) as rebilled_expense_revenue_reporting,
        sum(amount_reporting) as expense_cost_reporting
    from {{ ref('fct_expenses') }}
    where not is_deleted
      and is_approved
      and project_key is not null
      and expense_date <= {{ as_of_date() }}
    group by project_key, month_start_date
),

project_months as (
    select project_key, month_start_date from time_by_month
    union
    select project_key, month_start_date from milestones_by_month
    union
    select project_key, month_start_date from expenses_by_month
),

combined as (
    select
        project_months.project_key,
        project_months.month_start_date,
        coalesce(time_by_month.hours_worked, 0) as hours_worked,
        coalesce(time_by_month.billable_hours, 0) as billable_hours,
        coalesce(time_by_month.approved_billable_hours, 0) as approved_billable_hours,
        coalesce(time_by_month.standard_value_reporting, 0) as standard_value_reporting,
        coalesce(time_by_month.time_revenue_reporting, 0)
            + coalesce(milestones_by_month.milestone_revenue_reporting, 0) as labour_revenue_reporting,
        coalesce(expenses_by_month.rebilled_expense_revenue_reporting, 0) as rebilled_expense_revenue_reporting,
        coalesce(time_by_month.labour_cost_reporting, 0) as labour_cost_reporting,
        coalesce(expenses_by_month.expense_cost_reporting, 0) as expense_cost_reporting
    from project_months
    left join time_by_month
        on time_by_month.project_key = project_months.project_key
       and time_by_month.month_start_date = project_months.month_start_date
    left join milestones_by_month
        on milestones_by_month.project_key = project_months.project_key
       and milestones_by_month.month_start_date = project_months.month_start_date
    left join expenses_by_month
        on expenses_by_month.project_key = project_months.project_key
       and expenses_by_month.month_start_date = project_months.month_start_date
)

select
    combined.project_key,
    combined.month_start_date,
    projects.billing_model,
    cast('{{ var("reporting_currency") }}' as {{ ps_type('string') }}) as reporting_currency_code,
    cast(combined.hours_worked as {{ ps_type('number') }}) as hours_worked,
    cast(combined.billable_hours as {{ ps_type('number') }}) as billable_hours,
    cast(combined.approved_billable_hours as {{ ps_type('number') }}) as approved_billable_hours,
    cast(combined.standard_value_reporting as {{ ps_type('money') }}) as standard_value_reporting,
    cast(combined.labour_revenue_reporting as {{ ps_type('money') }}) as labour_revenue_reporting,
    cast(combined.rebilled_expense_revenue_reporting as {{ ps_type('money') }}) as rebilled_expense_revenue_reporting,
    cast(labour_revenue_reporting + rebilled_expense_revenue_reporting as {{ ps_type('money') }})
        as recognized_revenue_reporting,
    cast(combined.labour_cost_reporting as {{ ps_type('money') }}) as labour_cost_reporting,
    cast(combined.expense_cost_reporting as {{ ps_type('money') }}) as expense_cost_reporting,
    cast(labour_revenue_reporting + rebilled_expense_revenue_reporting - labour_cost_reporting
         - expense_cost_reporting as {{ ps_type('money') }}) as margin_reporting,
    {{ ps_ratio('labour_revenue_reporting + rebilled_expense_revenue_reporting - labour_cost_reporting - expense_cost_reporting',
                'labour_revenue_reporting + rebilled_expense_revenue_reporting') }} as margin_pct
from combined
left join projects on projects.project_key = combined.project_key
