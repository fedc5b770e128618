{#- Grain: one row per invoice line to hold in the ERP (line_external_id), with its invoice
    header repeated: the desired state of the pipeline's invoices, per project, legal entity,
    currency and billing period (the month of the work date, expense date or milestone
    completion day in the firm's timezone), from var billing_start_date on.

    Lines (fct_billable_items): approved billable time on time-and-materials work (hours x
    resolved bill rate), approved billable expenses (at cost), completed milestones of fixed-fee
    and milestone contracts (their amount), and recurring fees (a started period of a recurring
    HubSpot line item: quantity x price, in the month the period starts), converted into the
    project's billing currency.
      line_external_id    psp:inl:<source type>:<source id>  (NetSuite custcol_ps_line_key)
      invoice_external_id psp:inv:<invoice project>:<NetSuite subsidiary id>:<currency>:<YYYY-MM>
    The invoice project is the PSA project id; a project with none (a managed-services contract
    activated in the ERP only) is named by its NetSuite job, erp-<job id>, else by its key,
    key-<project key>: never a shared placeholder, so two such projects never share an invoice.
    Already invoiced work is left out (DECISIONLOG.md, "Billing and invoice coverage"): work a
    manual ERP invoice covers, and work whose line key is on an ERP invoice that is not one of
    ours. A line already posted on one of our invoices stays, on that invoice
    (is_posted_in_erp): an invoice here is complete, so re-posting it by external id updates
    it (a new version) instead of dropping its earlier lines.
    invoice_amount = the sum of the invoice's rounded line amounts (tested).
    validation_errors (null when none): erp_customer, erp_project, legal_entity, currency,
    billing_model (project setup, as in kpi_unbilled_wip), rate (unpriced), amount (not
    positive), and the holds (macros/billing_limits.sql): quarantined (the source record's newest
    version is in quarantine: this line would bill its older version), rate_limit, hours_limit,
    daily_hours_limit, amount_limit, invoice_amount_limit (the billing_max_* vars, in the
    reporting currency) and rate_anomaly (rate above billing_max_rate_card_multiple x the rate
    card); validation_detail says what each hold found, naming the record. is_invoice_valid is
    false when any line of the invoice has an error: the whole invoice waits, never posted. -#}
{%- set invoice_project = 'coalesce(items.psa_project_id, '
    ~ dbt.concat(["'erp-'", 'setup.erp_project_id']) ~ ', ' ~ dbt.concat(["'key-'", 'items.project_key']) ~ ')' %}

with items as (
    select
        *,
        -- Null for other kinds, so the join below stays an equality (hash) join.
        case when source_type = 'time_entry' then source_id end as time_entry_id
    from {{ ref('fct_billable_items') }}
    where billing_period_start >= cast('{{ var("billing_start_date") }}' as date)
      and service_date <= {{ as_of_date() }}
      and (
          not is_invoiced
          or (coverage_method = 'line_key' and erp_invoice_external_id like 'psp:inv:%')
      )
),

setup as (
    select * from {{ ref('int_project_billing_setup') }}
),

workers as (
    select worker_key, max(worker_name) as worker_name
    from {{ ref('dim_worker') }}
    group by worker_key
),

-- Approved hours of the person on the day, every project together: the daily-hours limit.
worker_days as (
    select
        time_entry_id,
        sum(hours) over (partition by kantata_user_id, work_date) as worker_day_hours
    from {{ ref('fct_time_entries') }}
    where not is_deleted
      and is_approved
),

lines as (
    select
        items.*,
        coalesce(setup.erp_platform, '{{ ps_role_declared('erp')[0] }}') as erp_platform,
        setup.erp_customer_id,
        -- Named apart from the item's own erp_project_id (dim_project's primary ERP project):
        -- the setup's also falls back on the project the activation flow just made.
        setup.erp_project_id as setup_erp_project_id,
        setup.erp_subsidiary_id,
        setup.erp_currency_id,
        setup.billing_blockers,
        workers.worker_name,
        worker_days.worker_day_hours,
        case
            when items.coverage_method = 'line_key' then items.erp_invoice_external_id
            else {{ psp_invoice_external_id(invoice_project, 'setup.erp_subsidiary_id',
                                            'items.billing_currency_code', 'items.billing_period_start') }}
        end as invoice_external_id,
        case items.source_type
            when 'time_entry' then {{ dbt.concat(["'Professional Services - '", "coalesce(items.item_detail, 'Consulting')"]) }}
            when 'expense' then {{ dbt.concat(["'Reimbursable Expense - '", "coalesce(items.item_detail, 'Other')"]) }}
            when 'recurring_fee' then {{ dbt.concat(["'Managed Services - '", "coalesce(items.item_detail, 'Recurring Fee')"]) }}
            else 'Professional Services - Milestone'
        end as item_name,
        case items.source_type
            when 'time_entry' then {{ dbt.concat(["coalesce(workers.worker_name, 'Unknown')", "' ('",
                                                  "coalesce(items.item_detail, 'Consulting')", "') '",
                                                  "cast(items.service_date as " ~ dbt.type_string() ~ ")"]) }}
            when 'expense' then {{ dbt.concat(["coalesce(items.item_detail, 'Expense')", "' '",
                                               "cast(items.service_date as " ~ dbt.type_string() ~ ")"]) }}
            when 'recurring_fee' then {{ dbt.concat(["coalesce(items.item_detail, 'Recurring fee')", "' from '",
                                                     "cast(items.service_date as " ~ dbt.type_string() ~ ")"]) }}
            else {{ dbt.concat(["'Milestone: '", "coalesce(items.item_detail, '')"]) }}
        end as memo
    from items
    left join setup on setup.project_key = items.project_key
    left join workers on workers.worker_key = items.worker_key
    left join worker_days on worker_days.time_entry_id = items.time_entry_id
),

-- What the limits compare, in the reporting currency: a line at its item's exchange rate
-- (as billed when no rate is known), an invoice as the sum of its lines.
measured as (
    select
        lines.*,
        coalesce(unit_rate * exchange_rate_to_reporting, billing_unit_rate) as unit_rate_reporting,
        coalesce(amount_reporting, billing_amount) as line_amount_reporting,
        sum(coalesce(amount_reporting, billing_amount)) over (partition by invoice_external_id)
            as invoice_amount_reporting,
        sum(billing_amount) over (partition by invoice_external_id) as invoice_billing_amount
    from lines
),

validated as (
    select
        measured.*,
        nullif(concat_ws(', ', billing_blockers,
            {{ ps_failed_checks([
                ('rate', 'billing_amount is null'),
                ('amount', 'billing_amount <= 0'),
            ]) }},
            {{ ps_billing_hold_errors() }}), '') as validation_errors,
        {{ ps_billing_hold_details() }} as validation_detail
    from measured
)

select
    cast(line_external_id as {{ ps_type('string') }}) as line_external_id,
    cast(invoice_external_id as {{ ps_type('string') }}) as invoice_external_id,
    source_type,
    source_id,
    cast(row_number() over (
        partition by invoice_external_id order by source_type, service_date, source_id
    ) as {{ ps_type('integer') }}) as line_number,
    project_key,
    psa_project_id,
    customer_key,
    legal_entity_key,
    contract_key,
    crm_contract_id,
    crm_opportunity_id,
    billing_model,
    billing_period_start,
    cast({{ year_month('billing_period_start') }} as {{ ps_type('string') }}) as billing_period,
    cast({{ dbt.last_day('billing_period_start', 'month') }} as date) as invoice_date,
    cast(erp_platform as {{ ps_type('string') }}) as erp_platform,
    erp_customer_id,
    setup_erp_project_id as erp_project_id,
    erp_subsidiary_id,
    erp_currency_id,
    billing_currency_code as currency_code,
    cast(item_name as {{ ps_type('string') }}) as item_name,
    cast(memo as {{ ps_type('string') }}) as memo,
    quantity,
    billing_unit_rate as unit_rate,
    billing_amount as amount,
    cast(sum(billing_amount) over (partition by invoice_external_id) as {{ ps_type('money') }}) as invoice_amount,
    cast(count(*) over (partition by invoice_external_id) as {{ ps_type('integer') }}) as invoice_line_count,
    currency_code as source_currency_code,
    amount as source_amount,
    unit_rate as source_unit_rate,
    billing_exchange_rate,
    pricing_source,
    worker_key,
    service_date,
    approved_at,
    coalesce(coverage_method = 'line_key', false) as is_posted_in_erp,
    case when coverage_method = 'line_key' then erp_invoice_id end as erp_invoice_id,
    cast(validation_errors as {{ ps_type('string') }}) as validation_errors,
    cast(validation_detail as {{ ps_type('string') }}) as validation_detail,
    is_quarantined,
    validation_errors is null as is_valid,
    min(case when validation_errors is null then 1 else 0 end) over (partition by invoice_external_id) = 1
        as is_invoice_valid
from validated
