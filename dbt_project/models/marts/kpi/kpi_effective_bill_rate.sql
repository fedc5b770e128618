{#- Grain: one row per project and month (project_key, month_start_date), in the reporting
    currency, from kpi_project_margin.

    effective_bill_rate = labour_revenue / hours_worked
      what each hour worked (billable or not, not rejected) actually earned: time at its bill
      rate on time-and-materials work, completed milestones on fixed fee and milestone work
    standard_bill_rate  = value of the approved billable hours at the rate card / those hours
    effective_to_standard_ratio = effective_bill_rate / standard_bill_rate
    Rates are null where their hours are 0. Over several months or projects, sum
    labour_revenue_reporting and hours_worked and divide: never average the rates. -#}
select
    project_key,
    month_start_date,
    billing_model,
    reporting_currency_code,
    hours_worked,
    approved_billable_hours,
    labour_revenue_reporting,
    standard_value_reporting,
    {{ ps_ratio('labour_revenue_reporting', 'hours_worked') }} as effective_bill_rate,
    {{ ps_ratio('standard_value_reporting', 'approved_billable_hours') }} as standard_bill_rate,
    {{ ps_ratio(ps_ratio('labour_revenue_reporting', 'hours_worked'),
                ps_ratio('standard_value_reporting', 'approved_billable_hours')) }}
        as effective_to_standard_ratio
from {{ ref('kpi_project_margin') }}
