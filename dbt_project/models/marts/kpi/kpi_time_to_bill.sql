{#- Grain: one row per legal entity (legal_entity_key) that invoiced billable work: the
    distribution of time-to-bill.

    days_to_invoice = ERP invoice date - the day the item became billable (approval date of
    time and expenses in the firm's timezone, completion date of milestones), per invoiced
    item of fct_billable_items (each invoiced time entry, expense and milestone counts once).
    p50 / p90 are continuous percentiles (percentile_cont). A negative value means the item was
    approved after the invoice that covers its month was issued (manual invoices bill a
    month as a whole; see DECISIONLOG.md). Work not yet invoiced is in kpi_unbilled_wip. -#}
with invoiced as (
    select legal_entity_key, source_type, days_to_invoice
    from {{ ref('fct_billable_items') }}
    where is_invoiced
      and days_to_invoice is not null
      and erp_invoice_date <= {{ as_of_date() }}
)

select
    invoiced.legal_entity_key,
    legal_entities.legal_entity_name,
    cast(count(*) as {{ ps_type('integer') }}) as invoiced_item_count,
    cast(sum(case when invoiced.source_type = 'time_entry' then 1 else 0 end) as {{ ps_type('integer') }})
        as invoiced_time_entry_count,
    cast(percentile_cont(0.5) within group (order by invoiced.days_to_invoice) as {{ ps_type('number') }})
        as p50_days_to_invoice,
    cast(percentile_cont(0.9) within group (order by invoiced.days_to_invoice) as {{ ps_type('number') }})
        as p90_days_to_invoice,
    cast(avg(invoiced.days_to_invoice) as {{ ps_type('number') }}) as avg_days_to_invoice,
    cast(min(invoiced.days_to_invoice) as {{ ps_type('integer') }}) as min_days_to_invoice,
    cast(max(invoiced.days_to_invoice) as {{ ps_type('integer') }}) as max_days_to_invoice
from invoiced
left join {{ ref('dim_legal_entity') }} as legal_entities
    on legal_entities.legal_entity_key = invoiced.legal_entity_key
group by invoiced.legal_entity_key, legal_entities.legal_entity_name
