{#- Grain: one row per Certinia rate card (pse__Rate_Card__c, latest version); deleted kept,
    flagged. Where a Kantata rate card version holds many role rates (rates_json), a Certinia
    rate card is one role's rate, narrowed by region, practice or account, over its start and
    end dates: the rate is a column here, and the Kantata version's columns (rate_card_id,
    rate_card_name, currency_code, effective_from, effective_to) keep their meaning. -#}
{%- set src = source('certinia', 'rate_cards') -%}
{%- set cols = ps_source_columns(src) -%}

with latest as (
    select * from {{ ps_latest_version(src) }} as latest_rows
)

select
    {{ ps_column(cols, 'id', 'rate_card_version_id', 'string') }},
    {{ ps_column(cols, 'id', 'rate_card_id', 'string') }},
    {{ ps_column(cols, 'name', 'rate_card_name', 'string') }},
    {{ ps_column(cols, 'currencyisocode', 'currency_code', 'string') }},
    {{ ps_column(cols, 'pse__start_date__c', 'effective_from', 'date') }},
    {{ ps_column(cols, 'pse__end_date__c', 'effective_to', 'date') }},
    {{ ps_column(cols, 'pse__role__c', 'role_name', 'string') }},
    {{ ps_decimal_column_expr(cols, 'pse__suggested_bill_rate__c', 'rate') }} as bill_rate,
    {{ ps_decimal_column_expr(cols, 'pse__average_cost_rate__c', 'rate') }} as cost_rate,
    {{ ps_column(cols, 'pse__region__c', 'region_id', 'string') }},
    {{ ps_column(cols, 'pse__practice__c', 'practice_id', 'string') }},
    {{ ps_column(cols, 'pse__account__c', 'account_id', 'string') }},
    {{ ps_column(cols, 'createddate', 'created_at', 'timestamp') }},
    {{ ps_lineage_columns(cols) }}
    {{ ps_pass_through_columns(cols, 'certinia_rate_cards_pass_through_columns') }}
from latest
