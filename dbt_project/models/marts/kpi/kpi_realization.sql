{#- Grain: one row per project and month (project_key, month_start_date) up to var as_of_date:
    realization in its three stages. Ratios use amounts in one currency per project, so no
    exchange-rate noise enters them; the *_reporting columns sum across projects.

    rate_realization       = value_at_bill_rate / value_at_standard_rate
        approved billable hours at the rate they were agreed at (the PSA's project rate) over
        the same hours at the rate card's standard rate for the worker's role (time currency)
    billing_realization    = billed_amount / billable_value
        what the ERP invoiced for the month's work (live invoice lines whose billing period is
        the month, in the billing currency) over the billable value of that work
        (fct_billable_items: T&M time at its rate, re-billed expenses, completed milestones);
        null until the month has been invoiced, so unbilled work-in-progress does not read as
        a write-off (that is kpi_unbilled_wip)
    collection_realization = collected_amount / billed_amount
        collected = the lines of invoices whose status is Paid In Full. No payment records are
        ingested: NetSuite's invoice status is the only collection signal, so an invoice counts
        as collected in full once paid in full and not at all before (partial payments and
        write-offs are not visible). -#}
with projects as (
    select project_key, currency_code as billing_currency_code
    from {{ ref('dim_project') }}
),

time_values as (
    select
        project_key,
        month_start_date,
        max(currency_code) as time_currency_code,
        sum(billable_hours) as approved_billable_hours,
        sum(billable_amount) as value_at_bill_rate,
        sum(standard_amount) as value_at_standard_rate,
        sum(billable_amount_reporting) as value_at_bill_rate_reporting,
        sum(standard_amount_reporting) as value_at_standard_rate_reporting
    from {{ ref('fct_time_entries') }}
    where not is_deleted
      and is_approved
      and is_billable
      and project_key is not null
      and work_date <= {{ as_of_date() }}
    group by project_key, month_start_date
),

billable as (
    select
        project_key,
        billing_period_start as month_start_date,
        sum(billing_amount) as billable_value,
        sum(amount_reporting) as billable_value_reporting
    from {{ ref('fct_billable_items') }}
    where project_key is not null
      and service_date <= {{ as_of_date() }}
    group by project_key, billing_period_start
),

invoice_lines as (
    select
        lines.project_key,
        lines.billing_period_start as month_start_date,
        lines.is_paid,
        lines.amount_reporting,
        case
            when lines.currency_code = projects.billing_currency_code then lines.amount
            else {{ ps_convert_amount('lines.amount', 'lines.exchange_rate_to_reporting', 'billing_fx.exchange_rate') }}
        end as amount_in_billing_currency
    from {{ ref('fct_invoice_lines') }} as lines
    inner join projects on projects.project_key = lines.project_key
    left join {{ ref('dim_currency_rates_daily') }} as billing_fx
        on billing_fx.currency_code = projects.billing_currency_code
       and billing_fx.date_day = lines.invoice_date
    where not lines.is_deleted
      and lines.invoice_date <= {{ as_of_date() }}
),

billed as (
    select
        project_key,
        month_start_date,
        sum(amount_in_billing_currency) as billed_amount,
        sum(case when is_paid then amount_in_billing_currency else 0 end) as collected_amount,
        sum(amount_reporting) as billed_amount_reporting,
        sum(case when is_paid then amount_reporting else 0 end) as collected_amount_reporting
    from invoice_lines
    group by project_key, month_start_date
),

project_months as (
    select project_key, month_start_date from time_values
    union
    select project_key, month_start_date from billable
    union
    select project_key, month_start_date from billed
),

combined as (
    select
        project_months.project_key,
        project_months.month_start_date,
        projects.billing_currency_code,
        time_values.time_currency_code,
        coalesce(time_values.approved_billable_hours, 0) as approved_billable_hours,
        coalesce(time_values.value_at_bill_rate, 0) as value_at_bill_rate,
        coalesce(time_values.value_at_standard_rate, 0) as value_at_standard_rate,
        coalesce(billable.billable_value, 0) as billable_value,
        coalesce(billed.billed_amount, 0) as billed_amount,
        coalesce(billed.collected_amount, 0) as collected_amount,
        coalesce(time_values.value_at_bill_rate_reporting, 0) as value_at_bill_rate_reporting,
        coalesce(time_values.value_at_standard_rate_reporting, 0) as value_at_standard_rate_reporting,
        coalesce(billable.billable_value_reporting, 0) as billable_value_reporting,
        coalesce(billed.billed_amount_reporting, 0) as billed_amount_reporting,
        coalesce(billed.collected_amount_reporting, 0) as collected_amount_reporting,
        billed.project_key is not null as is_invoiced_period
    from project_months
    left join projects on projects.project_key = project_months.project_key
    left join time_values
        on time_values.project_key = project_months.project_key
       and time_values.month_start_date = project_months.month_start_date
    left join billable
        on billable.project_key = project_months.project_key
       and billable.month_start_date = project_months.month_start_date
    left join billed
        on billed.project_key = project_months.project_key
       and billed.month_start_date = project_months.month_start_date
)

select
    project_key,
    month_start_date,
    billing_currency_code,
    time_currency_code,
    cast(approved_billable_hours as {{ ps_type('number') }}) as approved_billable_hours,
    cast(value_at_bill_rate as {{ ps_type('money') }}) as value_at_bill_rate,
    cast(value_at_standard_rate as {{ ps_type('money') }}) as value_at_standard_rate,
    {{ ps_ratio('value_at_bill_rate', 'value_at_standard_rate') }} as rate_realization,
    cast(billable_value as {{ ps_type('money') }}) as billable_value,
    cast(billed_amount as {{ ps_type('money') }}) as billed_amount,
    is_invoiced_period,
    case when is_invoiced_period then {{ ps_ratio('billed_amount', 'billable_value') }} end as billing_realization,
    cast(collected_amount as {{ ps_type('money') }}) as collected_amount,
    {{ ps_ratio('collected_amount', 'billed_amount') }} as collection_realization,
    cast('{{ var("reporting_currency") }}' as {{ ps_type('string') }}) as reporting_currency_code,
    cast(value_at_bill_rate_reporting as {{ ps_type('money') }}) as value_at_bill_rate_reporting,
    cast(value_at_standard_rate_reporting as {{ ps_type('money') }}) as value_at_standard_rate_reporting,
    cast(billable_value_reporting as {{ ps_type('money') }}) as billable_value_reporting,
    cast(billed_amount_reporting as {{ ps_type('money') }}) as billed_amount_reporting,
    cast(collected_amount_reporting as {{ ps_type('money') }}) as collected_amount_reporting
from combined
