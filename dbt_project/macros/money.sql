{#- Money arithmetic: one rule, rounded once (DECISIONLOG.md, "Money and currency").

    A money result is computed exactly and rounded once, to cents, half away from zero:
      - money operands are cast to ps_type('money') (decimal(18,2)), rates and quantities to
        ps_type('exact') (decimal(38,16)), so the product is an exact decimal on both engines;
      - round() of an exact decimal breaks ties away from zero on both engines: PostgreSQL
        "round(numeric, integer) ... for numeric, ties are broken by rounding away from zero"
        (PostgreSQL docs, Mathematical Functions; Numeric Types 8.1.2), DuckDB rounds a
        DECIMAL half away from zero too (round(-2.675, 2) = -2.68), where its round_even /
        roundbankers is the half-to-even variant (DuckDB docs, Numeric Functions);
      - never a bare `numeric`: DuckDB reads it as DECIMAL(18,3) (DuckDB docs, Numeric Types:
        "The default WIDTH and SCALE is DECIMAL(18, 3)"), so round(cast(x as numeric), 2)
        rounded to 3 places first and 1040.2445 came out 1040.25.
    Doubles (exchange rates, hours) enter through ps_exact_from_double: the decimal a double
    stands for is its first 15 significant digits (DBL_DIG). A double such as 1.005 is
    1.00499999999999989..., so reading it at more digits would round it down. -#}

{#- A rate or quantity as the exact type. -#}
{% macro ps_exact(expr) -%}
  cast(({{ expr }}) as {{ ps_type('exact') }})
{%- endmacro %}

{#- An exact decimal expression rounded once to money. -#}
{% macro ps_round_money(exact_expr) -%}
  {{ ps_round_to(exact_expr, 'money') }}
{%- endmacro %}

{#- An exact decimal expression rounded once to the scale of a decimal ps_type (money: 2,
    rate: 6), then typed as it: the cast only narrows the precision, never rounds again. -#}
{% macro ps_round_to(exact_expr, type) -%}
  {%- set scales = {'money': 2, 'rate': 6} -%}
  cast(round({{ exact_expr }}, {{ scales[type] }}) as {{ ps_type(type) }})
{%- endmacro %}

{#- Integer cents (Kantata's money, a double) as money. -#}
{% macro ps_cents_to_money(cents) -%}
  {{ ps_round_money(ps_exact_from_double(cents) ~ ' * 0.01') }}
{%- endmacro %}

{#- The exact decimal a double stands for: its 15 significant digits, as ps_type('exact').
    PostgreSQL's float8 -> numeric cast already keeps DBL_DIG (15) digits; DuckDB's cast
    scales the binary value instead (1.005 -> 1.00), so DuckDB goes through '%.15g' text. -#}
{% macro ps_exact_from_double(expr) -%}
  {{ return(adapter.dispatch('ps_exact_from_double', 'ps_pipelines')(expr)) }}
{%- endmacro %}

{% macro default__ps_exact_from_double(expr) -%}
  cast(cast(({{ expr }}) as double precision) as {{ ps_type('exact') }})
{%- endmacro %}

{% macro duckdb__ps_exact_from_double(expr) -%}
  cast(printf('%.15g', cast(({{ expr }}) as double)) as {{ ps_type('exact') }})
{%- endmacro %}

{#- Money: a quantity (hours, a share; a double) times a price (money), rounded once. -#}
{% macro ps_money_product(quantity, price) -%}
  {{ ps_round_money(ps_exact_from_double(quantity) ~ ' * cast((' ~ price ~ ') as ' ~ ps_type('money') ~ ')') }}
{%- endmacro %}

{#- Convert an amount (money) with a rate, and optionally back through a second rate, rounded
    once to cents as money. The project's conversion rule:
      reporting amount  = ps_convert_amount(amount, 'rate_of_currency')
      functional amount = ps_convert_amount(amount, 'rate_of_currency', 'rate_of_functional')
    where the rates come from dim_currency_rates_daily (reporting units per unit, doubles) on
    the same day. A quotient has no exact decimal in general and DuckDB divides decimals as
    doubles (DuckDB docs, Numeric Types), so the quotient is taken at the exact type's scale
    (15 significant digits on DuckDB) before the one rounding to cents; a quotient that is
    exactly a half cent stays one. A zero divisor gives null, as a missing rate does. -#}
{% macro ps_convert_amount(amount, rate, divide_by_rate=none) -%}
  {%- set product = 'cast((' ~ amount ~ ') as ' ~ ps_type('money') ~ ') * ' ~ ps_exact_from_double(rate) -%}
  {%- if divide_by_rate is none -%}
    {{ ps_round_money(product) }}
  {%- else -%}
    {{ ps_round_money(ps_exact_quotient(product, ps_exact_from_double(divide_by_rate))) }}
  {%- endif -%}
{%- endmacro %}

{#- numerator / denominator (both exact) as ps_type('exact'), null when the denominator is 0.
    PostgreSQL divides numerics to at least the operands' scale; DuckDB divides decimals as
    doubles, read back at their 15 significant digits. -#}
{% macro ps_exact_quotient(numerator, denominator) -%}
  {{ return(adapter.dispatch('ps_exact_quotient', 'ps_pipelines')(numerator, denominator)) }}
{%- endmacro %}

{% macro default__ps_exact_quotient(numerator, denominator) -%}
  cast(({{ numerator }}) / nullif({{ denominator }}, 0) as {{ ps_type('exact') }})
{%- endmacro %}

{% macro duckdb__ps_exact_quotient(numerator, denominator) -%}
  {{ ps_exact_from_double('(' ~ numerator ~ ') / nullif(' ~ denominator ~ ', 0)') }}
{%- endmacro %}
