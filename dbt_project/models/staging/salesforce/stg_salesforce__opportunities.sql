{#- Grain: one row per Salesforce Opportunity (latest version); deleted ones kept, flagged. -#}
{%- set src = source('salesforce', 'opportunities') -%}
{%- set cols = ps_source_columns(src) -%}

with latest as (
    select * from {{ ps_latest_version(src) }} as latest_rows
)

select
    {{ ps_column(cols, 'id', 'opportunity_id', 'string') }},
    {{ ps_column(cols, 'accountid', 'account_id', 'string') }},
    {{ ps_column(cols, 'name', 'opportunity_name', 'string') }},
    {{ ps_column(cols, 'stagename', 'stage_name', 'string') }},
    {{ ps_column(cols, 'iswon', 'is_won', 'boolean') }},
    {{ ps_column(cols, 'isclosed', 'is_closed', 'boolean') }},
    {{ ps_column(cols, 'probability', 'probability_pct', 'number') }},
    {{ ps_decimal_column_expr(cols, 'amount') }} as amount,
    {{ ps_column(cols, 'currencyisocode', 'currency_code', 'string') }},
    {{ ps_column(cols, 'closedate', 'close_date', 'date') }},
    {{ ps_column(cols, 'type', 'opportunity_type', 'string') }},
    {{ ps_column(cols, 'contractid', 'contract_id', 'string') }},
    {{ ps_column(cols, 'billing_model__c', 'billing_model', 'string') }},
    {{ ps_column(cols, 'legal_entity__c', 'legal_entity_name', 'string') }},
    {{ ps_column(cols, 'tax_code__c', 'tax_code', 'string') }},
    {{ ps_column(cols, 'erp_project_id__c', 'erp_project_id', 'string') }},
    {{ ps_column(cols, 'activation_status__c', 'activation_status', 'string') }},
    {{ ps_column(cols, 'createddate', 'created_at', 'timestamp') }},
    {{ ps_lineage_columns(cols) }}
    {{ ps_pass_through_columns(cols, 'salesforce_opportunities_pass_through_columns') }}
from latest
