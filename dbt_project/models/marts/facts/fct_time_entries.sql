{{ config(
    materialized='incremental',
    unique_key='time_entry_id',
    incremental_strategy='delete+insert',
    on_schema_change='append_new_columns',
) }}
{#- Grain: one row per PSA time entry (time_entry_id: a Kantata time entry, or a Certinia timecard day); deleted entries kept, flagged.

    Rates as of the work date (DECISIONLOG.md, "Rate resolution"):
      standard_bill_rate  the project's rate card row for the worker's role (dim_worker
                          version holding the work date), in the entry's currency
      bill_rate           the rate the PSA priced the entry at (the project's agreed rate),
                          else the standard rate; bill_rate_source says which
      cost_rate           the worker's Workday cost rate in that same version
    The entry's currency is the workspace's (Kantata prices a workspace in one currency).
    Amounts: billable_amount = round(hours x bill_rate, 2) for billable entries (0 when not
    billable, null when billable but unpriced); cost_amount = round(hours x cost_rate, 2) in
    the cost currency; each converted to the reporting currency and billable_amount to the
    legal entity's functional currency with dim_currency_rates_daily on the work date.

    is_quarantined: the entry's newest version is in quarantine, so this row is its older
    version, held back from billing (DECISIONLOG.md, "Quarantine holds"); ingestion restamps
    the raw row when the hold starts or ends, so an incremental build sees both.
    Incremental (delete+insert on time_entry_id): rows loaded since the last build, deletes
    not yet carried, and rows stored unresolved (macros/incremental.sql). --full-refresh
    reprices history, e.g. after a retroactive rate-card or cost-rate change. -#}
{#- is_quarantined is null only on rows stored before the column existed: re-read once. -#}
{%- set unresolved -%}
    worker_version_key is null or project_key is null or cost_rate is null
    or exchange_rate_to_reporting is null or (is_billable and bill_rate is null) or is_quarantined is null
{%- endset %}

with entries as (
    {{ incremental_source('int_psa_time_entries', 'time_entry_id', reprocess_when=unresolved) }}
),

worker_versions as (
    select worker_key, worker_version_key, valid_from, valid_to, job_profile, hourly_cost_rate,
           cost_rate_currency_code
    from {{ ref('dim_worker') }}
),

rate_card as (
    select rate_card_id, role, bill_rate, currency_code, valid_from, valid_to
    from {{ ref('dim_rate_card') }}
),

resolved as (
    select
        entries.*,
        {{ ps_project_context_columns('projects') }},
        projects.rate_card_id,
        user_workers.worker_key,
        worker_versions.worker_version_key,
        worker_versions.job_profile as worker_role,
        worker_versions.hourly_cost_rate as cost_rate,
        worker_versions.cost_rate_currency_code as cost_currency_code,
        coalesce(projects.psa_currency_code, card.currency_code, projects.currency_code) as transaction_currency_code,
        card.bill_rate as card_bill_rate,
        card.currency_code as card_currency_code,
        projects.functional_currency_code
    from entries
    {{ ps_join_psa_worker('user_workers', 'entries.user_id', 'entries.psa_platform') }}
    left join worker_versions
        on worker_versions.worker_key = user_workers.worker_key
       and worker_versions.valid_from <= entries.work_date
       and worker_versions.valid_to > entries.work_date
    {{ ps_join_project_context('projects', 'entries.project_id', 'entries.psa_platform') }}
    left join rate_card as card
        on card.rate_card_id = projects.rate_card_id
       and card.role = worker_versions.job_profile
       and card.valid_from <= entries.work_date
       and card.valid_to > entries.work_date
),

with_rates as (
    select
        resolved.*,
        {{ ps_fact_rate_columns() }},
        cost_fx.exchange_rate as cost_rate_to_reporting,
        cost_fx.rate_date as cost_rate_date,
        case
            when resolved.card_bill_rate is null then null
            when resolved.card_currency_code = resolved.transaction_currency_code then resolved.card_bill_rate
            else {{ ps_convert_amount('resolved.card_bill_rate', 'card_fx.exchange_rate', 'transaction_fx.exchange_rate') }}
        end as standard_bill_rate
    from resolved
    {{ ps_join_fact_rates('resolved.transaction_currency_code', 'resolved.functional_currency_code', 'resolved.work_date') }}
    {{ ps_join_daily_rate('card_fx', 'resolved.card_currency_code', 'resolved.work_date') }}
    {{ ps_join_daily_rate('cost_fx', 'resolved.cost_currency_code', 'resolved.work_date') }}
),

priced as (
    select
        with_rates.*,
        case when is_billable then hours else 0 end as billable_hours,
        case when bill_rate > 0 then bill_rate else standard_bill_rate end as resolved_bill_rate,
        case
            when bill_rate > 0 then 'psa_entry'
            when standard_bill_rate is not null then 'rate_card'
        end as bill_rate_source
    from with_rates
),

amounts as (
    select
        priced.*,
        case
            when not is_billable then cast(0 as {{ ps_type('money') }})
            else {{ ps_money_product('hours', 'resolved_bill_rate') }}
        end as billable_amount,
        case
            when not is_billable then cast(0 as {{ ps_type('money') }})
            else {{ ps_money_product('hours', 'standard_bill_rate') }}
        end as standard_amount,
        {{ ps_money_product('hours', 'cost_rate') }} as cost_amount
    from priced
)

select
    cast(time_entry_id as {{ ps_type('string') }}) as time_entry_id,
    {{ ps_fact_project_columns() }},
    worker_key,
    worker_version_key,
    cast(user_id as {{ ps_type('string') }}) as kantata_user_id,
    worker_role,
    story_id,
    work_date,
    cast({{ dbt.date_trunc('week', 'work_date') }} as date) as week_start_date,
    {{ month_start('work_date') }} as month_start_date,
    cast(hours as {{ ps_type('number') }}) as hours,
    cast(billable_hours as {{ ps_type('number') }}) as billable_hours,
    {{ ps_approval_columns() }},
    created_at,
    cast(transaction_currency_code as {{ ps_type('string') }}) as currency_code,
    cast(resolved_bill_rate as {{ ps_type('money') }}) as bill_rate,
    cast(bill_rate_source as {{ ps_type('string') }}) as bill_rate_source,
    cast(standard_bill_rate as {{ ps_type('money') }}) as standard_bill_rate,
    rate_card_id,
    billable_amount,
    standard_amount,
    {{ ps_converted_amount_columns(
        functional=[('billable_amount', 'billable_amount_functional')],
        reporting=[('billable_amount', 'billable_amount_reporting'),
                   ('standard_amount', 'standard_amount_reporting')]) }},
    cost_rate,
    cost_currency_code,
    cost_amount,
    cost_rate_to_reporting as cost_exchange_rate_to_reporting,
    cost_rate_date as cost_exchange_rate_date,
    {{ ps_convert_amount('cost_amount', 'cost_rate_to_reporting') }} as cost_amount_reporting,
    {{ ps_record_state_columns() }}
from amounts
