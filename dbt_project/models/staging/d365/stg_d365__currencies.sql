{#- Grain: one row per Dynamics 365 currency (shared across legal entities); deleted kept,
    flagged. The columns are stg_netsuite__currencies': F&O keys a currency by its ISO code, so
    currency_id and currency_code are both the code. is_base_currency is the reference currency
    for triangulation; a currency record carries no rate (exchange_rate_to_base is null: rates are
    stg_d365__exchange_rates). -#}
{%- set src = source('d365', 'currencies') -%}
{%- set cols = ps_source_columns(src) -%}

with latest as (
    select * from {{ ps_latest_version(src) }} as latest_rows
)

select
    upper({{ ps_column_expr(cols, 'currencycode', 'string') }}) as currency_id,
    upper({{ ps_column_expr(cols, 'currencycode', 'string') }}) as currency_code,
    {{ ps_column(cols, 'name', 'currency_name', 'string') }},
    coalesce({{ ps_column_expr(cols, 'referencecurrencyfortriangulation', 'string') }} = 'Yes', false)
        as is_base_currency,
    cast(null as {{ ps_type('number') }}) as exchange_rate_to_base,
    {{ ps_lineage_columns(cols) }}
    {{ ps_pass_through_columns(cols, 'd365_currencies_pass_through_columns') }}
from latest
