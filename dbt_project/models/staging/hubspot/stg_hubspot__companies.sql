{#- Grain: one row per HubSpot company (latest version); archived companies kept, flagged.
    The columns of stg_salesforce__accounts, so int_customer_identity can union the two CRMs:
    HubSpot has no account type, currency or legal entity on a company (null here); the firm's
    ERP customer id is its ps_external_id property (the write-back's idProperty). -#}
{%- set src = source('hubspot', 'companies') -%}
{%- set cols = ps_source_columns(src) -%}

with latest as (
    select * from {{ ps_latest_version(src) }} as latest_rows
)

select
    {{ ps_column(cols, 'id', 'account_id', 'string') }},
    {{ ps_column(cols, 'name', 'account_name', 'string') }},
    cast(null as {{ ps_type('string') }}) as account_type,
    {{ ps_column(cols, 'industry', 'industry', 'string') }},
    {{ ps_column(cols, 'country', 'billing_country', 'string') }},
    cast(null as {{ ps_type('string') }}) as currency_code,
    {{ ps_column(cols, 'ps_external_id', 'erp_customer_id', 'string') }},
    cast(null as {{ ps_type('string') }}) as legal_entity_name,
    {{ ps_column(cols, 'hubspot_owner_id', 'owner_id', 'string') }},
    {{ ps_column(cols, 'createdate', 'created_at', 'timestamp') }},
    {{ ps_column(cols, 'hs_lastmodifieddate', 'last_modified_at', 'timestamp') }},
    {{ ps_column(cols, 'domain', 'domain', 'string') }},
    {{ ps_lineage_columns(cols) }}
    {{ ps_pass_through_columns(cols, 'hubspot_companies_pass_through_columns') }}
from latest
