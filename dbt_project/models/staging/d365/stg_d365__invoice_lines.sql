{#- Grain: one row per posted Dynamics 365 customer invoice line (SalesInvoiceLines of every
    legal entity); lines gone from the journal are kept, flagged is_deleted. The columns are
    stg_netsuite__invoice_lines'. invoice_line_id is the source id (dataAreaId|InvoiceNumber|
    LineNumber), invoice_id its invoice's (dataAreaId|InvoiceNumber, stg_d365__invoices).
    F&O free-text lines post to a main account, not an item: item is the line description,
    which names the kind of work (time, expense, milestone) as NetSuite's item name does.
    line_key is the InvoiceText of the posted free-text line of the same invoice number and line
    number: the firm's line key the billing write-back sets. amount is in the invoice currency. -#}
{%- set src = source('d365', 'invoice_lines') -%}
{%- set cols = ps_source_columns(src) -%}
{%- set header_src = source('d365', 'free_text_invoices') -%}
{%- set header_cols = ps_source_columns(header_src) -%}
{%- set line_src = source('d365', 'free_text_invoice_lines') -%}
{%- set line_cols = ps_source_columns(line_src) -%}

with latest as (
    select * from {{ ps_latest_version(src) }} as latest_rows
),

free_text_headers as (
    select
        lower({{ ps_column_expr(header_cols, 'dataareaid', 'string') }}) as company_id,
        {{ ps_column_expr(header_cols, 'invoiceidentifier', 'string') }} as invoice_identifier,
        {{ ps_column_expr(header_cols, 'invoiceid', 'string') }} as invoice_number
    from {{ ps_latest_version(header_src) }} as header_rows
    where not coalesce(_is_deleted, false)
      and {{ ps_column_expr(header_cols, 'isposted', 'string') }} = 'Yes'
),

free_text_lines as (
    select
        headers.company_id,
        headers.invoice_number,
        {{ ps_column_expr(line_cols, 'linenumber', 'number') }} as line_number,
        max(nullif(trim({{ ps_column_expr(line_cols, 'invoicetext', 'string') }}), '')) as line_key
    from {{ ps_latest_version(line_src) }} as line_rows
    inner join free_text_headers as headers
        on headers.company_id = lower(line_rows.dataareaid)
       and headers.invoice_identifier = {{ ps_column_expr(line_cols, 'parentrecid', 'string') }}
    where not coalesce(line_rows._is_deleted, false)
    group by 1, 2, 3
)

select
    latest._source_id as invoice_line_id,
    {{ dbt.split_part('latest._source_id', "'|'", 1) }} || '|' || {{ dbt.split_part('latest._source_id', "'|'", 2) }}
        as invoice_id,
    {{ dbt.split_part('latest._source_id', "'|'", 3) }} as line_id,
    {{ ps_column(cols, 'linenumber', 'line_sequence_number', 'integer') }},
    {{ ps_column(cols, 'productdescription', 'item', 'string') }},
    {{ ps_column(cols, 'productdescription', 'memo', 'string') }},
    {{ ps_column(cols, 'invoicedquantity', 'quantity', 'number') }},
    {{ ps_decimal_column_expr(cols, 'salesprice', 'rate') }} as unit_rate,
    {{ ps_decimal_column_expr(cols, 'lineamount') }} as amount,
    free_text_lines.line_key,
    {{ ps_lineage_columns(cols) }}
    {{ ps_pass_through_columns(cols, 'd365_invoice_lines_pass_through_columns') }}
from latest
left join free_text_lines
    on free_text_lines.company_id = lower(latest.dataareaid)
   and free_text_lines.invoice_number = latest.invoicenumber
   and free_text_lines.line_number = {{ ps_column_expr(cols, 'linenumber', 'number') }}
