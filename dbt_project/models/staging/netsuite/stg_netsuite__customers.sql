{#- Grain: one row per NetSuite customer; deleted kept, flagged. crm_account_id is the
    customer's externalid, which the writeback sets to the Salesforce Account Id. -#}
{%- set src = source('netsuite', 'customers') -%}
{%- set cols = ps_source_columns(src) -%}

with latest as (
    select * from {{ ps_latest_version(src) }} as latest_rows
)

select
    {{ ps_column(cols, 'id', 'customer_id', 'string') }},
    {{ ps_column(cols, 'entityid', 'customer_number', 'string') }},
    {{ ps_column(cols, 'companyname', 'customer_name', 'string') }},
    nullif(trim({{ ps_column_expr(cols, 'externalid', 'string') }}), '') as crm_account_id,
    {{ ps_column(cols, 'subsidiary', 'subsidiary_id', 'string') }},
    {{ ps_column(cols, 'currency', 'currency_ref', 'string') }},
    coalesce({{ ps_column_expr(cols, 'isinactive', 'boolean') }}, false) as is_inactive,
    {{ ps_column(cols, 'datecreated', 'created_at', 'timestamp') }},
    {{ ps_lineage_columns(cols) }}
    {{ ps_pass_through_columns(cols, 'netsuite_customers_pass_through_columns') }}
from latest
