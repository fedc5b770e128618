{#- Money rule: every live NetSuite invoice's header total equals the sum of its live lines
    (fct_invoice_lines). Returns the invoices that disagree. -#}
select
    invoice_id,
    max(invoice_total_amount) as invoice_total_amount,
    sum(amount) as sum_of_lines
from {{ ref('fct_invoice_lines') }}
where not is_deleted
group by invoice_id
having max(invoice_total_amount) <> sum(amount)
    or count(distinct invoice_total_amount) > 1
