{#- Money rule: every live, approved, billable time entry has a bill rate and an amount in its
    own and in the reporting currency, and every billable item has a billing amount: work
    that cannot be priced can never be invoiced. -#}
{{ config(meta={'dagster': {'ref': {'name': 'fct_time_entries'}}}) }}
select 'time_entry' as source_type, time_entry_id as source_id
from {{ ref('fct_time_entries') }}
where not is_deleted
  and is_billable
  and is_approved
  and (bill_rate is null or billable_amount is null or billable_amount_reporting is null)

union all

select source_type, source_id
from {{ ref('fct_billable_items') }}
where billing_amount is null
