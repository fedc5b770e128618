{#- Grain: one row per project and kind of work (project_key, source_type) with leakage.

    Revenue leakage = approved billable work that became billable more than
    var revenue_leakage_days before var as_of_date and that no ERP invoice covers
    (fct_billable_items.is_leakage): time on time-and-materials work (approval date), billable
    expenses (approval date), completed fixed-fee / milestone milestones (completion date).
    leaked_amount is in the project's billing currency, leaked_amount_reporting in the
    reporting currency. billing_blockers (int_project_billing_setup) is the likely cause, e.g.
    no ERP project to invoice against. -#}
with leaking as (
    select *
    from {{ ref('fct_billable_items') }}
    where is_leakage
)

select
    leaking.project_key,
    leaking.source_type,
    max(leaking.psa_project_id) as psa_project_id,
    max(leaking.customer_key) as customer_key,
    max(leaking.legal_entity_key) as legal_entity_key,
    max(leaking.billing_currency_code) as billing_currency_code,
    cast(count(*) as {{ ps_type('integer') }}) as leaked_item_count,
    cast(sum(case when leaking.source_type = 'time_entry' then leaking.quantity else 0 end)
         as {{ ps_type('number') }}) as leaked_hours,
    cast(sum(leaking.billing_amount) as {{ ps_type('money') }}) as leaked_amount,
    cast('{{ var("reporting_currency") }}' as {{ ps_type('string') }}) as reporting_currency_code,
    cast(sum(leaking.amount_reporting) as {{ ps_type('money') }}) as leaked_amount_reporting,
    min(leaking.billable_since_date) as oldest_billable_since_date,
    cast(max(leaking.age_days) as {{ ps_type('integer') }}) as max_age_days,
    max(setup.billing_blockers) as billing_blockers
from leaking
left join {{ ref('int_project_billing_setup') }} as setup on setup.project_key = leaking.project_key
group by leaking.project_key, leaking.source_type
