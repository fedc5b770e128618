{#- Grain: one row per worker and effective date (RaaS Worker_Cost_Rates); deleted kept, flagged.
    cost_rate is an hourly amount in currency_code. -#}
{%- set src = source('workday', 'cost_rates') -%}
{%- set cols = ps_source_columns(src) -%}

with latest as (
    select * from {{ ps_latest_version(src) }} as latest_rows
)

select
    _source_id as cost_rate_id,
    {{ ps_column(cols, 'worker_id', 'worker_id', 'string') }},
    {{ ps_column(cols, 'effective_date', 'effective_date', 'date') }},
    {{ ps_decimal_column_expr(cols, 'cost_rate') }} as hourly_cost_rate,
    {{ ps_column(cols, 'currency', 'currency_code', 'string') }},
    {{ ps_column(cols, 'rate_type', 'rate_type', 'string') }},
    {{ ps_lineage_columns(cols) }}
    {{ ps_pass_through_columns(cols, 'workday_cost_rates_pass_through_columns') }}
from latest
