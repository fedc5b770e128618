{#- Grain: one row per billing period of a recurring HubSpot line item (recurring_fee_id =
    <line item id>-<period number>), the periods that have started by var as_of_date: what a
    managed-services contract bills each month, quarter or year.

    A line item bills when it is live, recurring, and its deal is won, live and has a delivery
    project (int_opportunity_projects.project_key: the project the activation made for the deal, in the
    PSA or the ERP). Its periods (HubSpot line item properties; sources in the YAML):
      months_per_period  recurringbillingfrequency: monthly 1, quarterly 3, per_six_months 6,
                         annually 12, per_two_years 24, per_three_years 36 (weekly and
                         biweekly bill by weeks: not expanded here, so not billed)
      period_count       the term hs_recurring_billing_period (ISO 8601, PnYnM...) in whole
                         months / months_per_period, else hs_recurring_billing_number_of_payments
      period n starts    hs_recurring_billing_start_date + (n - 1) x months_per_period months,
                         counted from the start each time (a 31st start bills on the last day
                         of a shorter month, and the next period is back on the 31st)
    amount = round(quantity x price, 2), once (macros/money.sql: ps_money_product); HubSpot's
    staged line items carry no discount, so the price is the net price.
    Without HubSpot in the estate the line items are no rows of the same columns
    (ps_declared_or_empty): the model is empty, and the billing chain below it is unchanged. -#}
{%- set months_per_frequency = {
    'monthly': 1, 'quarterly': 3, 'per_six_months': 6, 'annually': 12, 'per_two_years': 24, 'per_three_years': 36,
} %}
{%- set max_periods = 1024 %}

with line_items as (
    {{ ps_declared_or_empty('hubspot', 'stg_hubspot__line_items', [
        ('line_item_id', 'string'), ('deal_id', 'string'), ('line_item_name', 'string'), ('sku', 'string'),
        ('quantity', 'number'), ('unit_price', 'rate'), ('currency_code', 'string'),
        ('billing_frequency', 'string'), ('billing_term', 'string'), ('billing_start_date', 'date'),
        ('number_of_payments', 'integer'), ('is_recurring', 'boolean'), ('is_deleted', 'boolean'),
        ('is_quarantined', 'boolean'), ('quarantine_rule', 'string'),
    ]) }}
),

won_deal_projects as (
    select deals.opportunity_id as deal_id, projects.project_key
    from {{ ref('int_crm_opportunities') }} as deals
    inner join {{ ref('int_opportunity_projects') }} as projects
        on projects.crm_opportunity_id = deals.opportunity_id
    where deals.crm_platform = 'hubspot'
      and coalesce(deals.is_won, false)
      and not coalesce(deals.is_deleted, false)
),

terms as (
    select
        line_items.*,
        won_deal_projects.project_key,
        case lower(line_items.billing_frequency)
            {%- for frequency, months in months_per_frequency.items() %}
            when '{{ frequency }}' then {{ months }}
            {%- endfor %}
        end as months_per_period,
        -- PnYnMnD / PnW: the whole months of the term (a term in days or weeks only has none).
        cast(coalesce(cast(replace({{ regexp_first_match('line_items.billing_term', '[0-9]+Y') }}, 'Y', '') as integer), 0) * 12
             + coalesce(cast(replace({{ regexp_first_match('line_items.billing_term', '[0-9]+M') }}, 'M', '') as integer), 0)
            as {{ ps_type('integer') }}) as term_months
    from line_items
    inner join won_deal_projects on won_deal_projects.deal_id = line_items.deal_id
    where line_items.is_recurring
      and not line_items.is_deleted
      and line_items.billing_start_date is not null
),

counted as (
    select
        terms.*,
        cast(coalesce(floor(nullif(term_months, 0) / months_per_period), number_of_payments) as {{ ps_type('integer') }})
            as period_count
    from terms
    where months_per_period is not null
),

periods as (
    select
        counted.*,
        spine.spine_value + 1 as period_number,
        cast({{ dbt.dateadd('month', 'spine.spine_value * counted.months_per_period', 'counted.billing_start_date') }} as date)
            as period_start_date,
        cast({{ dbt.dateadd('day', '-1', dbt.dateadd('month', '(spine.spine_value + 1) * counted.months_per_period',
                                                     'counted.billing_start_date')) }} as date) as period_end_date
    from counted
    inner join {{ ps_integer_spine(max_periods) }} as spine on spine.spine_value < counted.period_count
)

select
    cast({{ dbt.concat(['line_item_id', "'-'", 'cast(period_number as ' ~ dbt.type_string() ~ ')']) }}
        as {{ ps_type('string') }}) as recurring_fee_id,
    line_item_id,
    cast(period_number as {{ ps_type('integer') }}) as period_number,
    deal_id,
    project_key,
    line_item_name,
    sku,
    billing_frequency,
    billing_term,
    cast(months_per_period as {{ ps_type('integer') }}) as months_per_period,
    period_count,
    period_start_date,
    period_end_date,
    quantity,
    cast(unit_price as {{ ps_type('money') }}) as unit_price,
    currency_code,
    {{ ps_money_product('quantity', 'unit_price') }} as amount,
    coalesce(is_quarantined, false) as is_quarantined,
    quarantine_rule
from periods
where period_start_date <= {{ as_of_date() }}
