{#- Grain: one row per HubSpot line item (latest version); archived ones kept, flagged. A line
    item is a deal's priced product: a one-off service, or a recurring managed service with its
    billing frequency, term and start (HubSpot's term is an ISO 8601 period, e.g. P12M). No
    Salesforce staging model plays this role (Salesforce contracts carry the terms instead).
    deal_id: the deal association, folded into the raw row by ingestion. -#}
{%- set src = source('hubspot', 'line_items') -%}
{%- set cols = ps_source_columns(src) -%}

with latest as (
    select * from {{ ps_latest_version(src) }} as latest_rows
)

select
    {{ ps_column(cols, 'id', 'line_item_id', 'string') }},
    {{ ps_column(cols, 'deal_id', 'deal_id', 'string') }},
    {{ ps_column(cols, 'name', 'line_item_name', 'string') }},
    {{ ps_column(cols, 'hs_product_id', 'product_id', 'string') }},
    {{ ps_column(cols, 'hs_sku', 'sku', 'string') }},
    {{ ps_column(cols, 'quantity', 'quantity', 'number') }},
    {{ ps_decimal_column_expr(cols, 'price', 'rate') }} as unit_price,
    {{ ps_decimal_column_expr(cols, 'amount') }} as amount,
    {{ ps_column(cols, 'hs_line_item_currency_code', 'currency_code', 'string') }},
    {{ ps_column(cols, 'recurringbillingfrequency', 'billing_frequency', 'string') }},
    {{ ps_column(cols, 'hs_recurring_billing_period', 'billing_term', 'string') }},
    {{ ps_column(cols, 'hs_recurring_billing_start_date', 'billing_start_date', 'date') }},
    {{ ps_column(cols, 'hs_recurring_billing_number_of_payments', 'number_of_payments', 'integer') }},
    {{ ps_column_expr(cols, 'recurringbillingfrequency', 'string') }} is not null as is_recurring,
    {{ ps_column(cols, 'ps_external_id', 'external_id', 'string') }},
    {{ ps_column(cols, 'createdate', 'created_at', 'timestamp') }},
    {{ ps_lineage_columns(cols) }}
    {{ ps_pass_through_columns(cols, 'hubspot_line_items_pass_through_columns') }}
from latest
