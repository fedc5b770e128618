{#- Grain: one row per Salesforce Account (latest version); deleted accounts kept, flagged. -#}
{%- set src = source('salesforce', 'accounts') -%}
{%- set cols = ps_source_columns(src) -%}

with latest as (
    select * from {{ ps_latest_version(src) }} as latest_rows
)

select
    {{ ps_column(cols, 'id', 'account_id', 'string') }},
    {{ ps_column(cols, 'name', 'account_name', 'string') }},
    {{ ps_column(cols, 'type', 'account_type', 'string') }},
    {{ ps_column(cols, 'industry', 'industry', 'string') }},
    {{ ps_column(cols, 'billingcountry', 'billing_country', 'string') }},
    {{ ps_column(cols, 'currencyisocode', 'currency_code', 'string') }},
    {{ ps_column(cols, 'erp_customer_id__c', 'erp_customer_id', 'string') }},
    {{ ps_column(cols, 'legal_entity__c', 'legal_entity_name', 'string') }},
    {{ ps_column(cols, 'ownerid', 'owner_id', 'string') }},
    {{ ps_column(cols, 'createddate', 'created_at', 'timestamp') }},
    {{ ps_column(cols, 'lastmodifieddate', 'last_modified_at', 'timestamp') }},
    {{ ps_lineage_columns(cols) }}
    {{ ps_pass_through_columns(cols, 'salesforce_accounts_pass_through_columns') }}
from latest
