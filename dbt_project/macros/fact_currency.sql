{#- The currency lookups every fact makes (DECISIONLOG.md, "Money and currency"), written once.

    ps_join_daily_rate: a left join of dim_currency_rates_daily as `alias` on the rate of
    `currency` on `on_date` (reporting units per unit, forward-filled over gaps).

    ps_converted_amount_columns: the fact's conversion columns, in the order of the contracts:
    functional currency and rate (fct_opportunities has no rate column), each of `functional` converted to the functional currency
    (amount x transaction rate / functional rate), the reporting currency, the transaction rate
    and its date, and each of `reporting` converted to the reporting currency. `functional` and
    `reporting` are lists of (amount expression, column name).

    ps_join_fact_rates / ps_fact_rate_columns: the two rates ps_converted_amount_columns reads
    by default, the transaction currency's (transaction_fx) and the functional currency's
    (functional_fx), both on the fact's valuation date. -#}
{% macro ps_join_daily_rate(alias, currency, on_date) -%}
    left join {{ ref('dim_currency_rates_daily') }} as {{ alias }}
        on {{ alias }}.currency_code = {{ currency }}
       and {{ alias }}.date_day = {{ on_date }}
{%- endmacro %}

{% macro ps_join_fact_rates(currency, functional_currency, on_date) -%}
    {{ ps_join_daily_rate('transaction_fx', currency, on_date) }}
    {{ ps_join_daily_rate('functional_fx', functional_currency, on_date) }}
{%- endmacro %}

{% macro ps_fact_rate_columns() -%}
    transaction_fx.exchange_rate as transaction_rate,
    transaction_fx.rate_date as transaction_rate_date,
    functional_fx.exchange_rate as functional_rate
{%- endmacro %}

{% macro ps_converted_amount_columns(functional, reporting, rate='transaction_rate',
                                     functional_rate='functional_rate', rate_date='transaction_rate_date',
                                     with_functional_exchange_rate=true) -%}
    functional_currency_code,
    {%- if with_functional_exchange_rate %}
    cast({{ rate }} / nullif({{ functional_rate }}, 0) as {{ ps_type('number') }}) as functional_exchange_rate,
    {%- endif %}
    {%- for amount, name in functional %}
    {{ ps_convert_amount(amount, rate, functional_rate) }} as {{ name }},
    {%- endfor %}
    cast('{{ var("reporting_currency") }}' as {{ ps_type('string') }}) as reporting_currency_code,
    {{ rate }} as exchange_rate_to_reporting,
    {{ rate_date }} as exchange_rate_date,
    {%- for amount, name in reporting %}
    {{ ps_convert_amount(amount, rate) }} as {{ name }}{{ ',' if not loop.last }}
    {%- endfor %}
{%- endmacro %}
