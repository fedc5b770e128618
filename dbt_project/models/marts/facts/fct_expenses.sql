{{ config(
    materialized='incremental',
    unique_key='expense_id',
    incremental_strategy='delete+insert',
    on_schema_change='append_new_columns',
) }}
{#- Grain: one row per PSA expense (expense_id: Kantata or Certinia); deleted expenses kept, flagged.
    amount is in the currency the expense was incurred in (currency_code); it is converted to
    the reporting currency and to the project legal entity's functional currency with
    dim_currency_rates_daily on the expense date. Billable approved expenses are re-billed at
    cost (fct_billable_items). Incremental like fct_time_entries (macros/incremental.sql).
    is_quarantined: the expense's newest version is in quarantine; this row is the older one,
    held back from billing (DECISIONLOG.md, "Quarantine holds"). -#}
{#- is_quarantined is null only on rows stored before the column existed: re-read once. -#}
{%- set unresolved = "project_key is null or exchange_rate_to_reporting is null or is_quarantined is null" %}

with expenses as (
    {{ incremental_source('int_psa_expenses', 'expense_id', reprocess_when=unresolved) }}
),

resolved as (
    select
        expenses.*,
        {{ ps_project_context_columns('projects') }},
        user_workers.worker_key,
        projects.functional_currency_code,
        {{ ps_fact_rate_columns() }}
    from expenses
    {{ ps_join_psa_worker('user_workers', 'expenses.user_id', 'expenses.psa_platform') }}
    {{ ps_join_project_context('projects', 'expenses.project_id', 'expenses.psa_platform') }}
    {{ ps_join_fact_rates('expenses.currency_code', 'projects.functional_currency_code', 'expenses.expense_date') }}
)

select
    cast(expense_id as {{ ps_type('string') }}) as expense_id,
    {{ ps_fact_project_columns() }},
    worker_key,
    cast(user_id as {{ ps_type('string') }}) as kantata_user_id,
    expense_date,
    {{ month_start('expense_date') }} as month_start_date,
    category,
    notes,
    {{ ps_approval_columns() }},
    created_at,
    currency_code,
    amount,
    {{ ps_converted_amount_columns(functional=[('amount', 'amount_functional')],
                                   reporting=[('amount', 'amount_reporting')]) }},
    {{ ps_record_state_columns() }}
from resolved
