{#- Grain: one row per Dynamics 365 customer (CustomersV3 of every legal entity); deleted kept,
    flagged. The columns are stg_netsuite__customers'. customer_id is the CustomerAccount, which
    F&O keys per legal entity (dataAreaId, carried in subsidiary_id): the firm numbers accounts
    across its companies (country-prefixed, e.g. US-00042), so the account alone is the id the
    write-back posts to and the marts join on; the unique test on customer_id fails loudly if
    two companies ever share one. crm_account_id is the firm's PsCrmAccountId extension field
    (the CRM account id the activation write-back sets). CustomersV3 exposes no inactive flag
    nor creation time. -#}
{%- set src = source('d365', 'customers') -%}
{%- set cols = ps_source_columns(src) -%}

with latest as (
    select * from {{ ps_latest_version(src) }} as latest_rows
)

select
    {{ ps_column(cols, 'customeraccount', 'customer_id', 'string') }},
    {{ ps_column(cols, 'customeraccount', 'customer_number', 'string') }},
    {{ ps_column(cols, 'organizationname', 'customer_name', 'string') }},
    nullif(trim({{ ps_column_expr(cols, 'pscrmaccountid', 'string') }}), '') as crm_account_id,
    lower({{ ps_column_expr(cols, 'dataareaid', 'string') }}) as subsidiary_id,
    upper({{ ps_column_expr(cols, 'salescurrencycode', 'string') }}) as currency_ref,
    false as is_inactive,
    cast(null as {{ ps_type('timestamp') }}) as created_at,
    {{ ps_lineage_columns(cols) }}
    {{ ps_pass_through_columns(cols, 'd365_customers_pass_through_columns') }}
from latest
