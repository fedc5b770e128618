{#- Grain: one row per live project (project_key): unbilled work-in-progress and billing
    readiness as of var as_of_date.

    unbilled_amount    = sum of billing_amount of billable items (fct_billable_items) with a
                         service date up to as_of_date that no ERP invoice covers, in the
                         project's billing currency (unbilled_amount_reporting: reporting)
    leakage_amount     = the part of it billable for more than var revenue_leakage_days
    pending_approval   = billable time on time-and-materials work still submitted, valued at
                         its bill rate: WIP that approval will release
    is_billing_ready   = the ERP has everything to invoice the project (int_project_billing_setup:
                         ERP customer, ERP project, legal entity, currency, billing model) and
                         every unbilled item is priced; billing_blockers says what is missing -#}
with setup as (
    select * from {{ ref('int_project_billing_setup') }}
    where not is_deleted
),

unbilled as (
    select
        project_key,
        count(*) as unbilled_item_count,
        sum(case when source_type = 'time_entry' then quantity else 0 end) as unbilled_hours,
        sum(billing_amount) as unbilled_amount,
        sum(amount_reporting) as unbilled_amount_reporting,
        sum(case when source_type = 'time_entry' then amount_reporting else 0 end) as unbilled_time_amount_reporting,
        sum(case when source_type = 'expense' then amount_reporting else 0 end) as unbilled_expense_amount_reporting,
        sum(case when source_type = 'milestone' then amount_reporting else 0 end)
            as unbilled_milestone_amount_reporting,
        sum(case when source_type = 'recurring_fee' then amount_reporting else 0 end)
            as unbilled_recurring_fee_amount_reporting,
        sum(case when is_leakage then amount_reporting else 0 end) as leakage_amount_reporting,
        sum(case when is_priced then 0 else 1 end) as unpriced_item_count,
        min(service_date) as oldest_unbilled_service_date,
        max(age_days) as max_unbilled_age_days
    from {{ ref('fct_billable_items') }}
    where not is_invoiced
      and service_date <= {{ as_of_date() }}
    group by project_key
),

pending as (
    select
        project_key,
        sum(billable_hours) as pending_approval_hours,
        sum(billable_amount_reporting) as pending_approval_amount_reporting
    from {{ ref('fct_time_entries') }}
    where not is_deleted
      and is_billable
      and approval_status = 'submitted'
      and coalesce(billing_model, 'Time and Materials') = 'Time and Materials'
      and work_date <= {{ as_of_date() }}
    group by project_key
)

select
    setup.project_key,
    setup.psa_project_id,
    setup.erp_project_id,
    setup.customer_key,
    setup.legal_entity_key,
    setup.billing_model,
    setup.billing_currency_code,
    cast(coalesce(unbilled.unbilled_item_count, 0) as {{ ps_type('integer') }}) as unbilled_item_count,
    cast(coalesce(unbilled.unbilled_hours, 0) as {{ ps_type('number') }}) as unbilled_hours,
    cast(coalesce(unbilled.unbilled_amount, 0) as {{ ps_type('money') }}) as unbilled_amount,
    cast('{{ var("reporting_currency") }}' as {{ ps_type('string') }}) as reporting_currency_code,
    cast(coalesce(unbilled.unbilled_amount_reporting, 0) as {{ ps_type('money') }}) as unbilled_amount_reporting,
    cast(coalesce(unbilled.unbilled_time_amount_reporting, 0) as {{ ps_type('money') }})
        as unbilled_time_amount_reporting,
    cast(coalesce(unbilled.unbilled_expense_amount_reporting, 0) as {{ ps_type('money') }})
        as unbilled_expense_amount_reporting,
    cast(coalesce(unbilled.unbilled_milestone_amount_reporting, 0) as {{ ps_type('money') }})
        as unbilled_milestone_amount_reporting,
    cast(coalesce(unbilled.unbilled_recurring_fee_amount_reporting, 0) as {{ ps_type('money') }})
        as unbilled_recurring_fee_amount_reporting,
    cast(coalesce(unbilled.leakage_amount_reporting, 0) as {{ ps_type('money') }}) as leakage_amount_reporting,
    unbilled.oldest_unbilled_service_date,
    cast(unbilled.max_unbilled_age_days as {{ ps_type('integer') }}) as max_unbilled_age_days,
    cast(coalesce(pending.pending_approval_hours, 0) as {{ ps_type('number') }}) as pending_approval_hours,
    cast(coalesce(pending.pending_approval_amount_reporting, 0) as {{ ps_type('money') }})
        as pending_approval_amount_reporting,
    cast(coalesce(unbilled.unpriced_item_count, 0) as {{ ps_type('integer') }}) as unpriced_item_count,
    cast(nullif(concat_ws(', ', setup.billing_blockers,
                          case when unbilled.unpriced_item_count > 0 then 'rate' end), '')
         as {{ ps_type('string') }}) as billing_blockers,
    setup.billing_blockers is null and coalesce(unbilled.unpriced_item_count, 0) = 0 as is_billing_ready
from setup
left join unbilled on unbilled.project_key = setup.project_key
left join pending on pending.project_key = setup.project_key
