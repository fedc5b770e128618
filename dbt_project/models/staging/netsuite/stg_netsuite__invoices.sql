{#- Grain: one row per NetSuite customer invoice (transaction of type CustInvc); deleted kept,
    flagged. total_amount is in the invoice's own (transaction) currency. -#}
{%- set src = source('netsuite', 'invoices') -%}
{%- set cols = ps_source_columns(src) -%}

with latest as (
    select * from {{ ps_latest_version(src) }} as latest_rows
)

select
    {{ ps_column(cols, 'id', 'invoice_id', 'string') }},
    {{ ps_column(cols, 'tranid', 'invoice_number', 'string') }},
    nullif(trim({{ ps_column_expr(cols, 'externalid', 'string') }}), '') as external_id,
    {{ ps_column(cols, 'type', 'transaction_type', 'string') }},
    {{ ps_column(cols, 'entity', 'customer_id', 'string') }},
    {{ ps_column(cols, 'job', 'project_id', 'string') }},
    {{ ps_column(cols, 'subsidiary', 'subsidiary_id', 'string') }},
    {{ ps_column(cols, 'currency', 'currency_ref', 'string') }},
    {{ ps_column(cols, 'trandate', 'invoice_date', 'date') }},
    {{ ps_column(cols, 'duedate', 'due_date', 'date') }},
    {{ ps_column(cols, 'status', 'invoice_status', 'string') }},
    {{ ps_decimal_column_expr(cols, 'foreigntotal') }} as total_amount,
    {{ ps_column(cols, 'memo', 'memo', 'string') }},
    {{ ps_column(cols, 'createddate', 'created_at', 'timestamp') }},
    {{ ps_lineage_columns(cols) }}
    {{ ps_pass_through_columns(cols, 'netsuite_invoices_pass_through_columns') }}
from latest
