{#- No double billing: an outbound line never bills work that an ERP invoice other than its own
    already covers (a manual invoice of its month, or another invoice carrying its line key). -#}
{{ config(meta={'dagster': {'ref': {'name': 'erp_billing_transactions'}}}) }}
select billing.line_external_id, items.coverage_method, items.erp_invoice_external_id
from {{ ref('erp_billing_transactions') }} as billing
inner join {{ ref('fct_billable_items') }} as items on items.line_external_id = billing.line_external_id
where items.is_invoiced
  and (items.coverage_method <> 'line_key'
       or items.erp_invoice_external_id <> billing.invoice_external_id)
