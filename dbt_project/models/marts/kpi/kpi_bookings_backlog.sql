{#- Grain: one row per legal entity and month (legal_entity_key, month_start_date), from the
    month of the first won deal to the month of var as_of_date; reporting currency.

    bookings        = sum of amount of the live opportunities won (closed won) in the month,
                      converted at their close date
    delivered       = labour revenue recognized in the month on the delivery projects of
                      booked deals (kpi_project_margin: T&M time at its bill rate, completed
                      milestones; re-billed expenses are not part of a booking)
    backlog         = at the end of the month, over every deal won by then:
                      sum of max(deal amount - its project's labour revenue to date, 0)
                      (a deal that overran does not eat into another deal's backlog)
    legal_entity_key is the deal's (contract, else opportunity) legal entity; null when it
    names none. -#}
with deals as (
    select opportunity_id, project_key, legal_entity_key, close_month_start_date, amount_reporting
    from {{ ref('fct_opportunities') }}
    where is_won
      and not is_deleted
      and close_date <= {{ as_of_date() }}
      and amount_reporting is not null
),

months as (
    select distinct month_start_date
    from {{ ref('dim_date') }}
    where month_start_date >= (select min(deals.close_month_start_date) from deals)
      and month_start_date <= {{ as_of_date() }}
),

project_revenue as (
    select project_key, month_start_date, sum(labour_revenue_reporting) as labour_revenue_reporting
    from {{ ref('kpi_project_margin') }}
    group by project_key, month_start_date
),

deal_months as (
    select
        deals.opportunity_id,
        deals.legal_entity_key,
        months.month_start_date,
        deals.amount_reporting,
        case when deals.close_month_start_date = months.month_start_date then 1 else 0 end as is_booked_in_month,
        coalesce(sum(case when project_revenue.month_start_date = months.month_start_date
                          then project_revenue.labour_revenue_reporting end), 0) as delivered_in_month,
        coalesce(sum(project_revenue.labour_revenue_reporting), 0) as delivered_to_date
    from deals
    inner join months on months.month_start_date >= deals.close_month_start_date
    left join project_revenue
        on project_revenue.project_key = deals.project_key
       and project_revenue.month_start_date <= months.month_start_date
    group by deals.opportunity_id, deals.legal_entity_key, months.month_start_date, deals.amount_reporting,
             deals.close_month_start_date
)

select
    legal_entity_key,
    month_start_date,
    cast('{{ var("reporting_currency") }}' as {{ ps_type('string') }}) as reporting_currency_code,
    cast(sum(is_booked_in_month) as {{ ps_type('integer') }}) as deals_won,
    cast(sum(case when is_booked_in_month = 1 then amount_reporting else 0 end) as {{ ps_type('money') }})
        as bookings_reporting,
    cast(sum(delivered_in_month) as {{ ps_type('money') }}) as delivered_revenue_reporting,
    cast(sum(case when amount_reporting > delivered_to_date then amount_reporting - delivered_to_date else 0 end)
         as {{ ps_type('money') }}) as backlog_reporting,
    cast(count(*) as {{ ps_type('integer') }}) as deals_to_date
from deal_months
group by legal_entity_key, month_start_date
