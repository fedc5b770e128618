{#- The incremental facts never drift from their sources: every staging record is in its fact
    with the same delete flag and the same values that decide money (a change or delete that
    an incremental build missed would show here). Returns the mismatches. -#}
{{ config(meta={'dagster': {'ref': {'name': 'fct_time_entries'}}}) }}
select 'time_entry' as fact, staged.time_entry_id as record_id
from {{ ref('stg_kantata__time_entries') }} as staged
left join {{ ref('fct_time_entries') }} as fact on fact.time_entry_id = staged.time_entry_id
where staged.time_entry_id is not null
  and (fact.time_entry_id is null
       or fact.is_deleted <> staged.is_deleted
       or fact.hours <> staged.hours
       or fact.is_billable <> staged.is_billable
       or coalesce(fact.approval_status, '') <> coalesce(staged.approval_status, '')
       or fact.work_date <> staged.work_date)

union all

select 'expense', staged.expense_id
from {{ ref('stg_kantata__expenses') }} as staged
left join {{ ref('fct_expenses') }} as fact on fact.expense_id = staged.expense_id
where staged.expense_id is not null
  and (fact.expense_id is null
       or fact.is_deleted <> staged.is_deleted
       or fact.amount <> staged.amount
       or coalesce(fact.approval_status, '') <> coalesce(staged.approval_status, ''))

union all

select 'invoice_line', staged.invoice_line_id
from {{ ref('int_erp_invoice_lines') }} as staged
left join {{ ref('fct_invoice_lines') }} as fact on fact.invoice_line_id = staged.invoice_line_id
where staged.invoice_line_id is not null
  and (fact.invoice_line_id is null
       or (staged.is_deleted and not fact.is_deleted)
       or fact.amount <> staged.amount)
