{#- Grain: one row per NetSuite currency record; deleted kept, flagged.
    exchange_rate_to_base is the currency master's current rate to the ERP base currency. -#}
{%- set src = source('netsuite', 'currencies') -%}
{%- set cols = ps_source_columns(src) -%}

with latest as (
    select * from {{ ps_latest_version(src) }} as latest_rows
)

select
    {{ ps_column(cols, 'id', 'currency_id', 'string') }},
    upper({{ ps_column_expr(cols, 'symbol', 'string') }}) as currency_code,
    {{ ps_column(cols, 'name', 'currency_name', 'string') }},
    coalesce({{ ps_column_expr(cols, 'isbasecurrency', 'boolean') }}, false) as is_base_currency,
    {{ ps_column(cols, 'exchangerate', 'exchange_rate_to_base', 'number') }},
    {{ ps_lineage_columns(cols) }}
    {{ ps_pass_through_columns(cols, 'netsuite_currencies_pass_through_columns') }}
from latest
