{#- Grain: one row per invoice line of outbound.erp_billing_transactions (line_external_id).

    From an invoice line back to everything it came from, and forward to its posting:
      source   the time entry, expense or milestone it bills (worker, service date, hours);
      rate     the unit rate applied and where it came from (pricing_source: psa_entry,
               rate_card, expense_at_cost, milestone_amount), the standard rate next to it;
      terms    the project, its contract and billing model, and the deal (fct_opportunities);
      ledger   the invoice's write-back ledger row (ops.outbox, key netsuite:invoice:<invoice
               external id>): state, versions, ERP invoice id, the run that posted it.
    Whether the line itself is in ERP is read from the payload the ERP last accepted
    (posted_payload lines carry custcol_ps_line_key = line_external_id): a line added to an
    invoice after its last posting is not posted yet even when the invoice is.
      line_posting_status  posted: ERP holds this line with this amount; posted_older_version:
                           ERP holds the line with another amount (a new invoice version is on
                           its way); not_posted: ERP does not hold the line yet. -#}
with lines as (
    select * from {{ ref('erp_billing_transactions') }}
),

time_entries as (
    select time_entry_id, kantata_user_id, worker_role, hours, standard_bill_rate, rate_card_id
    from {{ ref('fct_time_entries') }}
),

expenses as (
    select expense_id, kantata_user_id, category
    from {{ ref('fct_expenses') }}
),

milestones as (
    select milestone_id, milestone_name, completed_at
    from {{ ref('fct_milestones') }}
),

workers as (
    select worker_key, max(worker_name) as worker_name, max(workday_worker_id) as workday_worker_id
    from {{ ref('dim_worker') }}
    group by worker_key
),

contracts as (
    select contract_key, contract_number, contract_status, payment_terms
    from {{ ref('dim_contract') }}
),

deals as (
    select opportunity_id, opportunity_name, close_date, stage_name, amount, currency_code
    from {{ ref('fct_opportunities') }}
),

ledger as (
    select
        outbox_key,
        external_id,
        state,
        version,
        attempts,
        last_error,
        target_id,
        posted_at,
        posted_version,
        posted_run_id,
        last_run_id,
        cast(cast(posted_payload as json) -> 'item' -> 'items' as {{ dbt.type_string() }}) as posted_lines
    from {{ ref('stg_ops__outbox') }}
    where record_type = 'invoice'
),

posted_lines as (
    {{ unnest_json_array('ledger', 'posted_lines', ['outbox_key'],
                         {'custcol_ps_line_key': 'string', 'amount': 'money'}) }}
),

traced as (
    select
        lines.*,
        coalesce(time_entries.kantata_user_id, expenses.kantata_user_id) as kantata_user_id,
        time_entries.hours,
        time_entries.standard_bill_rate,
        time_entries.rate_card_id,
        workers.worker_name,
        workers.workday_worker_id,
        milestones.completed_at as milestone_completed_at,
        contracts.contract_number,
        contracts.contract_status,
        contracts.payment_terms,
        deals.opportunity_id as crm_deal_id,
        deals.opportunity_name,
        deals.close_date as deal_close_date,
        deals.stage_name as deal_stage_name,
        deals.amount as deal_amount,
        deals.currency_code as deal_currency_code,
        ledger.outbox_key,
        ledger.state as ledger_state,
        ledger.version as ledger_version,
        ledger.posted_version,
        ledger.attempts as ledger_attempts,
        ledger.last_error as ledger_last_error,
        ledger.target_id as ledger_target_id,
        ledger.posted_at,
        ledger.posted_run_id,
        ledger.last_run_id,
        posted_lines.custcol_ps_line_key is not null as is_in_posted_payload,
        posted_lines.amount as posted_amount
    from lines
    left join time_entries
        on lines.source_type = 'time_entry' and time_entries.time_entry_id = lines.source_id
    left join expenses
        on lines.source_type = 'expense' and expenses.expense_id = lines.source_id
    left join milestones
        on lines.source_type = 'milestone' and milestones.milestone_id = lines.source_id
    left join workers on workers.worker_key = lines.worker_key
    left join contracts on contracts.contract_key = lines.contract_key
    left join deals on deals.opportunity_id = lines.crm_opportunity_id
    left join ledger on ledger.external_id = lines.invoice_external_id
    left join posted_lines
        on posted_lines.outbox_key = ledger.outbox_key
       and posted_lines.custcol_ps_line_key = lines.line_external_id
)

select
    cast(line_external_id as {{ ps_type('string') }}) as line_external_id,
    {{ surrogate_key(['source_type', 'source_id']) }} as billable_item_key,
    invoice_external_id,
    line_number,
    invoice_date,
    billing_period,
    currency_code,
    item_name,
    memo,
    quantity,
    unit_rate,
    amount,
    invoice_amount,
    invoice_line_count,
    is_valid,
    validation_errors,
    source_type,
    source_id,
    cast(case when source_type = 'time_entry' then source_id end as {{ ps_type('string') }}) as time_entry_id,
    cast(case when source_type = 'expense' then source_id end as {{ ps_type('string') }}) as expense_id,
    cast(case when source_type = 'milestone' then source_id end as {{ ps_type('string') }}) as milestone_id,
    service_date,
    approved_at,
    milestone_completed_at,
    worker_key,
    cast(worker_name as {{ ps_type('string') }}) as worker_name,
    cast(workday_worker_id as {{ ps_type('string') }}) as workday_worker_id,
    cast(kantata_user_id as {{ ps_type('string') }}) as kantata_user_id,
    cast(hours as {{ ps_type('number') }}) as hours,
    pricing_source,
    source_currency_code,
    source_unit_rate,
    source_amount,
    billing_exchange_rate,
    cast(standard_bill_rate as {{ ps_type('money') }}) as standard_bill_rate,
    cast(rate_card_id as {{ ps_type('string') }}) as rate_card_id,
    project_key,
    psa_project_id,
    erp_customer_id,
    erp_project_id,
    erp_subsidiary_id,
    legal_entity_key,
    contract_key,
    crm_contract_id,
    cast(contract_number as {{ ps_type('string') }}) as contract_number,
    cast(contract_status as {{ ps_type('string') }}) as contract_status,
    cast(payment_terms as {{ ps_type('string') }}) as payment_terms,
    billing_model,
    -- The deal as the CRM knows it: a PSA project may name an opportunity the estate's CRM
    -- does not hold (e.g. one of a CRM the firm has left), which the trace cannot show.
    crm_deal_id as crm_opportunity_id,
    cast(opportunity_name as {{ ps_type('string') }}) as opportunity_name,
    deal_close_date,
    cast(deal_stage_name as {{ ps_type('string') }}) as deal_stage_name,
    cast(deal_amount as {{ ps_type('money') }}) as deal_amount,
    cast(deal_currency_code as {{ ps_type('string') }}) as deal_currency_code,
    cast(outbox_key as {{ ps_type('string') }}) as outbox_key,
    cast(ledger_state as {{ ps_type('string') }}) as ledger_state,
    cast(ledger_version as {{ ps_type('integer') }}) as ledger_version,
    cast(posted_version as {{ ps_type('integer') }}) as posted_version,
    cast(ledger_attempts as {{ ps_type('integer') }}) as ledger_attempts,
    cast(ledger_last_error as {{ ps_type('string') }}) as ledger_last_error,
    cast(coalesce(ledger_target_id, erp_invoice_id) as {{ ps_type('string') }}) as erp_invoice_id,
    is_posted_in_erp,
    coalesce(is_in_posted_payload, false) as is_in_posted_payload,
    cast(posted_amount as {{ ps_type('money') }}) as posted_amount,
    posted_at,
    cast(posted_run_id as {{ ps_type('string') }}) as posted_run_id,
    cast(last_run_id as {{ ps_type('string') }}) as last_run_id,
    cast(case
        when is_in_posted_payload and posted_amount = amount then 'posted'
        when is_in_posted_payload then 'posted_older_version'
        else 'not_posted'
    end as {{ ps_type('string') }}) as line_posting_status
from traced
