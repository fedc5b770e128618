{#- Grain: one row per Dynamics 365 exchange rate of the rate type the ledgers use
    (var d365_exchange_rate_type) per currency pair and start date; deleted kept, flagged.
    The columns are stg_netsuite__exchange_rates': F&O quotes Rate units of ToCurrency per
    ConversionFactor units of FromCurrency from StartDate, so the base currency is ToCurrency,
    the transaction currency FromCurrency and exchange_rate Rate / ConversionFactor (one unit
    of the transaction currency in base currency units). Refs are ISO codes. An unknown
    conversion factor leaves exchange_rate null (tested not null). -#}
{%- set src = source('d365', 'exchange_rates') -%}
{%- set cols = ps_source_columns(src) -%}

with latest as (
    select * from {{ ps_latest_version(src) }} as latest_rows
    where {{ ps_column_expr(cols, 'ratetypename', 'string') }} = '{{ var("d365_exchange_rate_type") }}'
)

select
    _source_id as exchange_rate_id,
    upper({{ ps_column_expr(cols, 'tocurrency', 'string') }}) as base_currency_ref,
    upper({{ ps_column_expr(cols, 'fromcurrency', 'string') }}) as transaction_currency_ref,
    {{ ps_column_expr(cols, 'rate', 'number') }} / case {{ ps_column_expr(cols, 'conversionfactor', 'string') }}
        when 'One' then 1
        when 'Ten' then 10
        when 'Hundred' then 100
        when 'Thousand' then 1000
        when 'TenThousand' then 10000
        when 'HundredThousand' then 100000
        when 'Million' then 1000000
    end as exchange_rate,
    {{ ps_column(cols, 'startdate', 'effective_date', 'date') }},
    {{ ps_lineage_columns(cols) }}
    {{ ps_pass_through_columns(cols, 'd365_exchange_rates_pass_through_columns') }}
from latest
