{#- Convert an amount with a rate (and optionally back through a second rate), rounded to
    cents as money. The project's conversion rule (DECISIONLOG.md, "Money and currency"):
      reporting amount  = ps_convert_amount(amount, 'rate_of_currency')
      functional amount = ps_convert_amount(amount, 'rate_of_currency', 'rate_of_functional')
    where the rates come from dim_currency_rates_daily (reporting units per unit) on the same
    day. The product is taken as numeric before rounding: PostgreSQL cannot round a double
    to a number of places. -#}
{% macro ps_convert_amount(amount, rate, divide_by_rate=none) -%}
  cast(round(cast(({{ amount }}) * ({{ rate }})
    {%- if divide_by_rate is not none %} / ({{ divide_by_rate }}){% endif %} as numeric), 2)
    as {{ ps_type('money') }})
{%- endmacro %}
