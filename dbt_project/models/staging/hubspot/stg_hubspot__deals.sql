{#- Grain: one row per HubSpot deal (latest version); archived deals kept, flagged.
    The columns of stg_salesforce__opportunities. stage_name: the default pipeline's closed
    stages as Salesforce names them (Closed Won, Closed Lost), any other stage its HubSpot id;
    is_won and is_closed come from HubSpot's own stage metadata, probability from 0-1 to percent.
    account_id: HubSpot carries a deal's company as an association, not a property; ingestion
    folds the primary company's id into the raw row as company_id. The terms a Salesforce firm
    keeps on its contract (billing model, legal entity, tax code) are the deal's custom
    properties: HubSpot has no contract object, so contract_id stays null. -#}
{%- set src = source('hubspot', 'deals') -%}
{%- set cols = ps_source_columns(src) -%}
{%- set stage = ps_column_expr(cols, 'dealstage', 'string') -%}

with latest as (
    select * from {{ ps_latest_version(src) }} as latest_rows
)

select
    {{ ps_column(cols, 'id', 'opportunity_id', 'string') }},
    {{ ps_column(cols, 'company_id', 'account_id', 'string') }},
    {{ ps_column(cols, 'dealname', 'opportunity_name', 'string') }},
    case {{ stage }} when 'closedwon' then 'Closed Won' when 'closedlost' then 'Closed Lost'
        else {{ stage }} end as stage_name,
    coalesce({{ ps_column_expr(cols, 'hs_is_closed_won', 'boolean') }}, false) as is_won,
    coalesce({{ ps_column_expr(cols, 'hs_is_closed', 'boolean') }}, false) as is_closed,
    {{ ps_column_expr(cols, 'hs_deal_stage_probability', 'number') }} * 100 as probability_pct,
    {{ ps_decimal_column_expr(cols, 'amount') }} as amount,
    {{ ps_column(cols, 'deal_currency_code', 'currency_code', 'string') }},
    cast({{ ps_column_expr(cols, 'closedate', 'timestamp') }} as date) as close_date,
    {{ ps_column(cols, 'dealtype', 'opportunity_type', 'string') }},
    cast(null as {{ ps_type('string') }}) as contract_id,
    {{ ps_column(cols, 'ps_billing_model', 'billing_model', 'string') }},
    {{ ps_column(cols, 'ps_legal_entity', 'legal_entity_name', 'string') }},
    {{ ps_column(cols, 'ps_tax_code', 'tax_code', 'string') }},
    {{ ps_column(cols, 'ps_external_id', 'erp_project_id', 'string') }},
    {{ ps_column(cols, 'ps_activation_status', 'activation_status', 'string') }},
    {{ ps_column(cols, 'createdate', 'created_at', 'timestamp') }},
    {{ ps_column(cols, 'pipeline', 'pipeline_id', 'string') }},
    {{ ps_column(cols, 'hubspot_owner_id', 'owner_id', 'string') }},
    {{ ps_lineage_columns(cols) }}
    {{ ps_pass_through_columns(cols, 'hubspot_deals_pass_through_columns') }}
from latest
