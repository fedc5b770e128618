{#- Grain: one row per NetSuite currency rate record; deleted kept, flagged.
    One unit of the transaction currency is worth exchange_rate units of the base currency
    on effective_date (NetSuite's currencyrate semantics). -#}
{%- set src = source('netsuite', 'exchange_rates') -%}
{%- set cols = ps_source_columns(src) -%}

with latest as (
    select * from {{ ps_latest_version(src) }} as latest_rows
)

select
    {{ ps_column(cols, 'id', 'exchange_rate_id', 'string') }},
    {{ ps_column(cols, 'basecurrency', 'base_currency_ref', 'string') }},
    {{ ps_column(cols, 'transactioncurrency', 'transaction_currency_ref', 'string') }},
    {{ ps_column(cols, 'exchangerate', 'exchange_rate', 'number') }},
    {{ ps_column(cols, 'effectivedate', 'effective_date', 'date') }},
    {{ ps_lineage_columns(cols) }}
    {{ ps_pass_through_columns(cols, 'netsuite_exchange_rates_pass_through_columns') }}
from latest
