{#- Money rule for the writeback: each outbound invoice (erp_billing_transactions) has one
    header (project, subsidiary, customer, job, currency, billing period, amount) and its amount
    equals the sum of its lines, which are rounded to cents. Returns the invoices that break it. -#}
select
    invoice_external_id,
    max(invoice_amount) as invoice_amount,
    sum(amount) as sum_of_lines
from {{ ref('erp_billing_transactions') }}
group by invoice_external_id
having max(invoice_amount) <> sum(amount)
    or count(distinct invoice_amount) > 1
    or count(distinct project_key) > 1
    or count(distinct coalesce(erp_subsidiary_id, '_')) > 1
    or count(distinct coalesce(erp_customer_id, '_')) > 1
    or count(distinct coalesce(erp_project_id, '_')) > 1
    or count(distinct currency_code) > 1
    or count(distinct billing_period_start) > 1
    or max(invoice_line_count) <> count(*)
    or sum(case when amount <> round(amount, 2) then 1 else 0 end) > 0
