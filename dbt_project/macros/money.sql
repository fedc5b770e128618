{#- Money arithmetic: one rule, rounded once (DECISIONLOG.md, "Money and currency").

    A money result is computed exactly and rounded once, to cents, half away from zero:
      - money operands are cast to ps_type('money') (decimal(18,2)), rates and quantities to
        ps_type('exact') (decimal(38,16)), so the product is an exact decimal on both engines;
      - round() of an exact decimal breaks ties away from zero on both engines: PostgreSQL
        "round(numeric, integer) ... for numeric, ties are broken by rounding away from zero"
        (PostgreSQL docs, Mathematical Functions; Numeric Types 8.1.2), DuckDB rounds a
        DECIMAL half away from zero too (round(-2.675, 2) = -2.68), where its round_even /
        roundbankers is the half-to-even variant (DuckDB docs, Numeric Functions); the
        property test tests/transform/test_money_rounding.py holds both engines to it;
      - never a bare `numeric`: DuckDB reads it as DECIMAL(18,3) (DuckDB docs, Numeric Types:
        "The default WIDTH and SCALE is DECIMAL(18, 3)"), so round(cast(x as numeric), 2)
        rounded to 3 places first and 1040.2445 came out 1040.25.
    Doubles (exchange rates, hours) enter through ps_exact_from_double: the decimal a double
    stands for is its first 15 significant digits (DBL_DIG). A double such as 1.005 is
    1.00499999999999989..., so reading it at more digits would round it down. -#}

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
    PostgreSQL's float8 -> numeric cast keeps DBL_DIG (15) digits. DuckDB's cast scales the
    binary value instead (1.005 -> 1.00), so DuckDB reads the '%.15g' text; the text is parsed
    into a 64-bit decimal wide enough for its magnitude, since parsing a long text straight
    into decimal(38,16) costs about ten times as much per row. -#}
{% macro ps_exact_from_double(expr) -%}
  {{ return(adapter.dispatch('ps_exact_from_double', 'ps_pipelines')(expr)) }}
{%- endmacro %}

{% macro default__ps_exact_from_double(expr) -%}
  cast(cast(({{ expr }}) as double precision) as {{ ps_type('exact') }})
{%- endmacro %}

{% macro duckdb__ps_exact_from_double(expr) -%}
  {%- set value = 'cast((' ~ expr ~ ') as double)' -%}
  {%- set text = "printf('%.15g', " ~ value ~ ")" -%}
  {#- (below, scale): a value below `below` needs at most `scale` decimals for 15 significant
      digits (16 below 1: the exact type's scale), and decimal(18, scale) still holds it after
      the text rounds it up a digit (99.99999999999999 -> '100'). -#}
  case
    {%- for below, scale in [('1', 16), ('1e3', 14), ('1e6', 11), ('1e9', 8), ('1e12', 5), ('1e15', 2)] %}
    when abs({{ value }}) < {{ below }} then cast(cast({{ text }} as decimal(18,{{ scale }})) as {{ ps_type('exact') }})
    {%- endfor %}
    else cast({{ text }} as {{ ps_type('exact') }})
  end
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
    the same day. A zero divisor gives null, as a missing rate does. -#}
{% macro ps_convert_amount(amount, rate, divide_by_rate=none) -%}
  {%- if divide_by_rate is none -%}
    {{ ps_round_money('cast((' ~ amount ~ ') as ' ~ ps_type('money') ~ ') * ' ~ ps_exact_from_double(rate)) }}
  {%- else -%}
    {{ ps_round_money(ps_exact_quotient(amount, rate, divide_by_rate)) }}
  {%- endif -%}
{%- endmacro %}

{#- amount x rate / divide_by_rate as ps_type('exact'). A quotient has no exact decimal in
    general. PostgreSQL divides the exact product as numeric, to at least its 18 decimals.
    DuckDB divides decimals as doubles anyway (DuckDB docs, Numeric Types), so it divides the
    doubles and reads the quotient by its 15 significant digits: a quotient that is exactly a
    half cent (24691.35 / 2 = 12345.675, a double of 12345.67499999...) stays one. -#}
{% macro ps_exact_quotient(amount, rate, divide_by_rate) -%}
  {{ return(adapter.dispatch('ps_exact_quotient', 'ps_pipelines')(amount, rate, divide_by_rate)) }}
{%- endmacro %}

{% macro default__ps_exact_quotient(amount, rate, divide_by_rate) -%}
  cast(cast(({{ amount }}) as {{ ps_type('money') }}) * {{ ps_exact_from_double(rate) }}
       / nullif({{ ps_exact_from_double(divide_by_rate) }}, 0) as {{ ps_type('exact') }})
{%- endmacro %}

{% macro duckdb__ps_exact_quotient(amount, rate, divide_by_rate) -%}
  {{ ps_exact_from_double('cast((' ~ amount ~ ') as double) * cast((' ~ rate ~ ') as double)'
                          ~ ' / nullif(cast((' ~ divide_by_rate ~ ') as double), 0)') }}
{%- endmacro %}
