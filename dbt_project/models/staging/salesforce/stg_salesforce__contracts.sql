{#- Grain: one row per Salesforce Contract (latest version); deleted ones kept, flagged. -#}
{%- set src = source('salesforce', 'contracts') -%}
{%- set cols = ps_source_columns(src) -%}

with latest as (
    select * from {{ ps_latest_version(src) }} as latest_rows
)

select
    {{ ps_column(cols, 'id', 'contract_id', 'string') }},
    {{ ps_column(cols, 'accountid', 'account_id', 'string') }},
    {{ ps_column(cols, 'opportunity__c', 'opportunity_id', 'string') }},
    {{ ps_column(cols, 'contractnumber', 'contract_number', 'string') }},
    {{ ps_column(cols, 'status', 'contract_status', 'string') }},
    {{ ps_column(cols, 'startdate', 'start_date', 'date') }},
    {{ ps_column(cols, 'enddate', 'end_date', 'date') }},
    {{ ps_column(cols, 'contractterm', 'contract_term_months', 'number') }},
    {{ ps_column(cols, 'currencyisocode', 'currency_code', 'string') }},
    {{ ps_column(cols, 'billing_model__c', 'billing_model', 'string') }},
    {{ ps_column(cols, 'legal_entity__c', 'legal_entity_name', 'string') }},
    {{ ps_column(cols, 'payment_terms__c', 'payment_terms', 'string') }},
    {{ ps_column(cols, 'tax_code__c', 'tax_code', 'string') }},
    {{ ps_decimal_column_expr(cols, 'contract_value__c') }} as contract_value,
    {{ ps_column(cols, 'createddate', 'created_at', 'timestamp') }},
    {{ ps_lineage_columns(cols) }}
    {{ ps_pass_through_columns(cols, 'salesforce_contracts_pass_through_columns') }}
from latest
