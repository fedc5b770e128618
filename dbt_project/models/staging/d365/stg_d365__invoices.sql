{#- Grain: one row per posted Dynamics 365 customer invoice (SalesInvoiceHeadersV2, the customer
    invoice journal, of every legal entity); deleted kept, flagged. The columns are
    stg_netsuite__invoices'. Invoice numbers are per legal entity, so invoice_id is the record's
    source id (dataAreaId|InvoiceNumber). The posted free-text invoice of the same number
    (FreeTextInvoiceHeaders, IsPosted = Yes) adds what the journal lacks: external_id (the
    firm's ExternalInvoiceId, set by the billing write-back) and the due date.
    transaction_type says which: FreeTextInvoice, else SalesInvoice. project_id is the project
    its lines bill (the firm invoices one project per invoice; the lowest id if ever several).
    The journal carries no payment status (invoice_status is null: is_paid stays false) nor memo
    or creation time. total_amount is in the invoice currency. -#}
{%- set src = source('d365', 'invoices') -%}
{%- set cols = ps_source_columns(src) -%}
{%- set free_text_src = source('d365', 'free_text_invoices') -%}
{%- set free_text_cols = ps_source_columns(free_text_src) -%}
{%- set line_src = source('d365', 'invoice_lines') -%}
{%- set line_cols = ps_source_columns(line_src) -%}

with latest as (
    select * from {{ ps_latest_version(src) }} as latest_rows
),

free_text as (
    select
        lower({{ ps_column_expr(free_text_cols, 'dataareaid', 'string') }}) as company_id,
        {{ ps_column_expr(free_text_cols, 'invoiceid', 'string') }} as invoice_number,
        max(nullif(trim({{ ps_column_expr(free_text_cols, 'externalinvoiceid', 'string') }}), '')) as external_id,
        max({{ ps_column_expr(free_text_cols, 'duedate', 'date') }}) as due_date
    from {{ ps_latest_version(free_text_src) }} as free_text_rows
    where not coalesce(_is_deleted, false)
      and {{ ps_column_expr(free_text_cols, 'isposted', 'string') }} = 'Yes'
    group by 1, 2
),

line_projects as (
    select
        lower({{ ps_column_expr(line_cols, 'dataareaid', 'string') }}) as company_id,
        {{ ps_column_expr(line_cols, 'invoicenumber', 'string') }} as invoice_number,
        min(nullif(trim({{ ps_column_expr(line_cols, 'projectid', 'string') }}), '')) as project_id
    from {{ ps_latest_version(line_src) }} as line_rows
    where not coalesce(_is_deleted, false)
    group by 1, 2
)

select
    latest._source_id as invoice_id,
    {{ ps_column(cols, 'invoicenumber', 'invoice_number', 'string') }},
    free_text.external_id,
    cast(case when free_text.invoice_number is not null then 'FreeTextInvoice' else 'SalesInvoice' end
        as {{ ps_type('string') }}) as transaction_type,
    {{ ps_column(cols, 'invoicecustomeraccountnumber', 'customer_id', 'string') }},
    line_projects.project_id,
    lower({{ ps_column_expr(cols, 'dataareaid', 'string') }}) as subsidiary_id,
    upper({{ ps_column_expr(cols, 'currencycode', 'string') }}) as currency_ref,
    {{ ps_column(cols, 'invoicedate', 'invoice_date', 'date') }},
    free_text.due_date,
    cast(null as {{ ps_type('string') }}) as invoice_status,
    {{ ps_decimal_column_expr(cols, 'totalinvoiceamount') }} as total_amount,
    cast(null as {{ ps_type('string') }}) as memo,
    cast(null as {{ ps_type('timestamp') }}) as created_at,
    {{ ps_lineage_columns(cols) }}
    {{ ps_pass_through_columns(cols, 'd365_invoices_pass_through_columns') }}
from latest
left join free_text
    on free_text.company_id = lower(latest.dataareaid)
   and free_text.invoice_number = latest.invoicenumber
left join line_projects
    on line_projects.company_id = lower(latest.dataareaid)
   and line_projects.invoice_number = latest.invoicenumber
