{#- Grain: one row per NetSuite invoice line (invoice id + line id); lines that vanished from a
    re-read invoice are kept, flagged is_deleted. amount is in the invoice's currency.
    line_key is custcol_ps_line_key: the deterministic external id the billing writeback
    put on the line, which ties it back to the work it bills. -#}
{%- set src = source('netsuite', 'invoice_lines') -%}
{%- set cols = ps_source_columns(src) -%}

with latest as (
    select * from {{ ps_latest_version(src) }} as latest_rows
)

select
    _source_id as invoice_line_id,
    {{ ps_column(cols, 'transaction', 'invoice_id', 'string') }},
    {{ ps_column(cols, 'id', 'line_id', 'string') }},
    {{ ps_column(cols, 'linesequencenumber', 'line_sequence_number', 'integer') }},
    {{ ps_column(cols, 'item', 'item', 'string') }},
    {{ ps_column(cols, 'memo', 'memo', 'string') }},
    {{ ps_column(cols, 'quantity', 'quantity', 'number') }},
    {{ ps_decimal_column_expr(cols, 'rate', 'rate') }} as unit_rate,
    {{ ps_decimal_column_expr(cols, 'foreignamount') }} as amount,
    nullif(trim({{ ps_column_expr(cols, 'custcol_ps_line_key', 'string') }}), '') as line_key,
    {{ ps_lineage_columns(cols) }}
    {{ ps_pass_through_columns(cols, 'netsuite_invoice_lines_pass_through_columns') }}
from latest
