{#- A row per whole number from 0 to row_count - 1 (row_count known when compiling), column
    `spine_value`: a cross join of 0/1 digits (2^bits rows) filtered to the range, plain SQL every
    adapter runs, no generate_series and no query at compile time. -#}
{% macro ps_integer_spine(row_count) -%}
  {%- set bits = [] -%}
  {%- for bit in range(32) if (2 ** bit) < row_count -%}{%- do bits.append(bit) -%}{%- endfor -%}
  {%- if not bits -%}{%- do bits.append(0) -%}{%- endif -%}
  (
    with binary_digit as (
      select 0 as digit union all select 1
    ),
    numbers as (
      select
        {% for bit in bits -%}
          d{{ bit }}.digit * {{ 2 ** bit }}{{ ' + ' if not loop.last }}
        {%- endfor %} as spine_value
      from {% for bit in bits -%}
        binary_digit as d{{ bit }}{{ ' cross join ' if not loop.last }}
      {%- endfor %}
    )
    select spine_value from numbers where spine_value < {{ row_count }}
  )
{%- endmacro %}

{#- A row per calendar day from start_date to end_date (both inclusive, 'YYYY-MM-DD'),
    column date_day (date), from the integer spine of its day count. -#}
{% macro ps_date_spine(start_date, end_date) -%}
  {%- set start = modules.datetime.date.fromisoformat(start_date | string) -%}
  {%- set end = modules.datetime.date.fromisoformat(end_date | string) -%}
  {%- set day_count = (end - start).days + 1 -%}
  {%- if day_count < 1 -%}
    {{ exceptions.raise_compiler_error("ps_date_spine: end_date " ~ end ~ " is before start_date " ~ start) }}
  {%- endif -%}
  (
    select
      cast({{ dbt.dateadd('day', 'day_offset.spine_value', "cast('" ~ start ~ "' as date)") }} as date) as date_day
    from {{ ps_integer_spine(day_count) }} as day_offset
  )
{%- endmacro %}

{#- The firm's calendar day of a UTC instant (var firm_timezone). A time entry approved at
    02:00 UTC on the 1st was approved on the 31st in New York. -#}
{% macro to_firm_date(timestamp_expr) -%}
  cast(({{ timestamp_expr }}) at time zone '{{ var("firm_timezone") }}' as date)
{%- endmacro %}

{#- The instant the firm's calendar day `date_expr` starts (var firm_timezone): a source that
    keeps a date, not a time, read back by to_firm_date as that same day. -#}
{% macro from_firm_date(date_expr) -%}
  (cast({{ date_expr }} as timestamp) at time zone '{{ var("firm_timezone") }}')
{%- endmacro %}

{#- The as_of_date var as a SQL date literal. -#}
{% macro as_of_date() -%}
  cast('{{ var("as_of_date") }}' as date)
{%- endmacro %}

{#- The open start of an effective-dated range that is back-filled before its first point. -#}
{% macro open_start_date() -%}
  cast('1900-01-01' as date)
{%- endmacro %}

{#- The open end of an effective-dated range (valid_to of the current version). -#}
{% macro open_end_date() -%}
  cast('9999-12-31' as date)
{%- endmacro %}
