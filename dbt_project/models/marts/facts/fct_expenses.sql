{{ config(
    materialized='incremental',
    unique_key='expense_id',
    incremental_strategy='delete+insert',
    on_schema_change='append_new_columns',
) }}
{#- Grain: one row per Kantata expense (expense_id); deleted expenses kept, flagged.
    amount is in the currency the expense was incurred in (currency_code); it is converted to
    the reporting currency and to the project legal entity's functional currency with
    dim_currency_rates_daily on the expense date. Billable approved expenses are re-billed at
    cost (fct_billable_items). Incremental like fct_time_entries (macros/incremental.sql).
    is_quarantined: the expense's newest version is in quarantine; this row is the older one,
    held back from billing (DECISIONLOG.md, "Quarantine holds"). -#}
{#- is_quarantined is null only on rows stored before the column existed: re-read once. -#}
{%- set unresolved = "project_key is null or exchange_rate_to_reporting is null or is_quarantined is null" %}

with expenses as (
    select *
    from {{ ref('stg_kantata__expenses') }}
    where expense_id is not null
    {%- if is_incremental() %}
      and {{ incremental_changes('expense_id', reprocess_when=unresolved) }}
    {%- endif %}
),

user_workers as (
    select source_record_id as user_id, worker_key
    from {{ ref('int_worker_identity') }}
    where source_system = 'kantata'
),

projects as (
    select *
    from {{ ref('int_fact_project_context') }}
    where source_system = 'kantata'
),

resolved as (
    select
        expenses.*,
        projects.project_key,
        projects.customer_key,
        projects.contract_key,
        projects.legal_entity_key,
        projects.billing_model,
        user_workers.worker_key,
        projects.functional_currency_code,
        transaction_fx.exchange_rate as transaction_rate,
        transaction_fx.rate_date as transaction_rate_date,
        functional_fx.exchange_rate as functional_rate
    from expenses
    left join user_workers on user_workers.user_id = expenses.user_id
    left join projects on projects.source_record_id = expenses.project_id
    {{ ps_join_daily_rate('transaction_fx', 'expenses.currency_code', 'expenses.expense_date') }}
    {{ ps_join_daily_rate('functional_fx', 'projects.functional_currency_code', 'expenses.expense_date') }}
)

select
    cast(expense_id as {{ ps_type('string') }}) as expense_id,
    project_key,
    cast(project_id as {{ ps_type('string') }}) as psa_project_id,
    customer_key,
    contract_key,
    legal_entity_key,
    billing_model,
    worker_key,
    cast(user_id as {{ ps_type('string') }}) as kantata_user_id,
    expense_date,
    {{ month_start('expense_date') }} as month_start_date,
    category,
    notes,
    is_billable,
    approval_status,
    coalesce(approval_status = 'approved', false) as is_approved,
    approved_at,
    {{ to_firm_date('approved_at') }} as approval_date,
    created_at,
    currency_code,
    amount,
    {{ ps_converted_amount_columns(functional=[('amount', 'amount_functional')],
                                   reporting=[('amount', 'amount_reporting')]) }},
    source_updated_at,
    _loaded_at as loaded_at,
    is_deleted,
    deleted_at,
    is_quarantined,
    quarantined_at,
    quarantine_rule
from resolved
