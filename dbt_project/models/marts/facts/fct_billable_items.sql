{#- Grain: one row per billable piece of work (source_type, source_id), live records only:
      time_entry  approved billable time on a time-and-materials project (or one whose billing
                  model is unknown), priced at fct_time_entries.bill_rate
      expense     approved billable expense, re-billed at cost, on any billing model
      milestone   completed milestone of a fixed-fee or milestone contract, at its amount
      recurring_fee  a started billing period of a recurring HubSpot line item of a won deal
                  (int_recurring_fee_items: managed services), quantity x price, on any billing
                  model; its service date is the period's first day (billed in advance)
    Each item is converted into its project's billing currency (dim_project.currency_code) on
    its service date: unit rate first, then billing_amount = round(quantity x unit rate, 2),
    as an ERP invoice line computes it. billing_period_start is the month of the service date
    (work date, expense date, firm day of completion).

    Invoice coverage (DECISIONLOG.md, "Billing and invoice coverage"), first that applies:
      line_key          a live ERP invoice line carries the item's line external id
                        (custcol_ps_line_key = psp:inl:<source type>:<source id>)
      manual_milestone  a live manual ERP milestone line of the project names the milestone
                        in its memo, or bills its amount in its month
      manual_period     a live manual ERP invoice line of the same project, billing period and
                        kind (time or expense) exists: manual invoices bill a month of a
                        project's work as a whole, so every item of that month is covered
    is_quarantined: the source record's newest version is in quarantine, so this item is priced
    from its older version; erp_billing_transactions holds its invoice until the source is
    fixed (DECISIONLOG.md, "Quarantine holds"). standard_unit_rate: the rate card's rate for
    time (the anomaly check's yardstick), null for expenses and milestones.
    Rebuilt in full every run: coverage changes with ERP data, not with the work itself.
    Aging is measured from the day the item became billable (approval date; completion date
    for milestones) to var as_of_date; leakage = not invoiced after var revenue_leakage_days. -#}
{%- set project_columns = [
    'psa_project_id', 'erp_project_id', 'customer_key', 'contract_key', 'crm_contract_id',
    'crm_opportunity_id', 'legal_entity_key', 'billing_model',
] %}

with projects as (
    select project_key, {{ project_columns | join(', ') }}, currency_code as billing_currency_code
    from {{ ref('dim_project') }}
),

time_items as (
    select
        'time_entry' as source_type,
        time_entry_id as source_id,
        project_key,
        worker_key,
        worker_role as item_detail,
        work_date as service_date,
        approved_at,
        approval_date as billable_since_date,
        hours as quantity,
        bill_rate as unit_rate,
        bill_rate_source as pricing_source,
        currency_code,
        billable_amount as amount,
        standard_bill_rate as standard_unit_rate,
        is_quarantined,
        quarantine_rule
    from {{ ref('fct_time_entries') }}
    where not is_deleted
      and is_billable
      and is_approved
      and coalesce(billing_model, 'Time and Materials') = 'Time and Materials'
),

-- Expenses and milestones bill at their amount (quantity 1, no rate card): one arm, read from
-- each source's fact by the names below.
{%- set priced_at_amount = [
    {'source_type': 'expense', 'fact': 'fct_expenses', 'source_id': 'expense_id',
     'worker_key': 'worker_key', 'item_detail': 'category', 'service_date': 'expense_date',
     'approved_at': 'approved_at', 'billable_since_date': 'approval_date',
     'pricing_source': 'expense_at_cost', 'is_billable': 'is_billable and is_approved'},
    {'source_type': 'milestone', 'fact': 'fct_milestones', 'source_id': 'milestone_id',
     'worker_key': 'null', 'item_detail': 'milestone_name', 'service_date': 'completion_date',
     'approved_at': 'completed_at', 'billable_since_date': 'completion_date',
     'pricing_source': 'milestone_amount', 'is_billable': 'is_completed and is_billing_milestone'},
] %}

amount_items as (
    {%- for item in priced_at_amount %}
    select
        '{{ item.source_type }}' as source_type,
        {{ item.source_id }} as source_id,
        project_key,
        cast({{ item.worker_key }} as {{ ps_type('string') }}) as worker_key,
        {{ item.item_detail }} as item_detail,
        {{ item.service_date }} as service_date,
        {{ item.approved_at }} as approved_at,
        {{ item.billable_since_date }} as billable_since_date,
        cast(1 as {{ ps_type('number') }}) as quantity,
        amount as unit_rate,
        '{{ item.pricing_source }}' as pricing_source,
        currency_code,
        amount,
        cast(null as {{ ps_type('money') }}) as standard_unit_rate,
        is_quarantined,
        quarantine_rule
    from {{ ref(item.fact) }}
    where not is_deleted
      and {{ item.is_billable }}
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
),

recurring_fee_items as (
    select
        'recurring_fee' as source_type,
        recurring_fee_id as source_id,
        project_key,
        cast(null as {{ ps_type('string') }}) as worker_key,
        line_item_name as item_detail,
        period_start_date as service_date,
        cast(null as {{ ps_type('timestamp') }}) as approved_at,
        period_start_date as billable_since_date,
        quantity,
        unit_price as unit_rate,
        'recurring_line_item' as pricing_source,
        currency_code,
        amount,
        cast(null as {{ ps_type('money') }}) as standard_unit_rate,
        is_quarantined,
        quarantine_rule
    from {{ ref('int_recurring_fee_items') }}
),

items as (
    select * from time_items
    union all
    select * from amount_items
    union all
    select * from recurring_fee_items
),

in_billing_currency as (
    select
        items.*,
        {%- for column in project_columns %}
        projects.{{ column }},
        {%- endfor %}
        coalesce(projects.billing_currency_code, items.currency_code) as billing_currency_code,
        {{ month_start('items.service_date') }} as billing_period_start,
        item_fx.exchange_rate as exchange_rate_to_reporting,
        item_fx.rate_date as exchange_rate_date,
        billing_fx.exchange_rate as billing_currency_rate_to_reporting,
        case
            when items.currency_code = coalesce(projects.billing_currency_code, items.currency_code) then 1.0
            else item_fx.exchange_rate / nullif(billing_fx.exchange_rate, 0)
        end as billing_exchange_rate
    from items
    left join projects on projects.project_key = items.project_key
    {{ ps_join_daily_rate('item_fx', 'items.currency_code', 'items.service_date') }}
    {{ ps_join_daily_rate('billing_fx', 'coalesce(projects.billing_currency_code, items.currency_code)',
                          'items.service_date') }}
),

priced as (
    select
        in_billing_currency.*,
        case
            when billing_exchange_rate = 1.0 then unit_rate
            -- Through both rates, as the functional amounts convert: one division, one rounding.
            else {{ ps_convert_amount('unit_rate', 'exchange_rate_to_reporting', 'billing_currency_rate_to_reporting') }}
        end as billing_unit_rate
    from in_billing_currency
),

billed_amounts as (
    select
        priced.*,
        case
            when billing_exchange_rate = 1.0 then amount
            else {{ ps_money_product('quantity', 'billing_unit_rate') }}
        end as billing_amount,
        -- Join keys that are null where a kind of coverage does not apply: equality-only
        -- joins stay hash joins (a condition on one side only would make a nested loop).
        case source_type when 'time_entry' then 'time' when 'expense' then 'expense' end as period_line_kind,
        case when source_type = 'milestone' then source_id end as milestone_id
    from priced
),

erp_lines as (
    select *
    from {{ ref('fct_invoice_lines') }}
    where not is_deleted
),

keyed_coverage as (
    select line_source_type, line_source_id, invoice_id, invoice_external_id, invoice_date
    from (
        select
            erp_lines.*,
            row_number() over (
                partition by line_source_type, line_source_id order by invoice_date, invoice_id
            ) as coverage_rank
        from erp_lines
        where line_source_id is not null
    ) as ranked
    where coverage_rank = 1
),

manual_lines as (
    select *
    from erp_lines
    where line_source_id is null
      and project_key is not null
),

manual_period_coverage as (
    select project_key, billing_period_start, line_kind, invoice_id, invoice_external_id, invoice_date
    from (
        select
            manual_lines.*,
            row_number() over (
                partition by project_key, billing_period_start, line_kind order by invoice_date, invoice_id
            ) as coverage_rank
        from manual_lines
        where line_kind in ('time', 'expense')
    ) as ranked
    where coverage_rank = 1
),

manual_milestone_coverage as (
    select source_id, invoice_id, invoice_external_id, invoice_date
    from (
        select
            milestones.source_id,
            manual_lines.invoice_id,
            manual_lines.invoice_external_id,
            manual_lines.invoice_date,
            row_number() over (
                partition by milestones.source_id order by manual_lines.invoice_date, manual_lines.invoice_id
            ) as coverage_rank
        from billed_amounts as milestones
        inner join manual_lines
            on manual_lines.project_key = milestones.project_key
           and manual_lines.line_kind = 'milestone'
           and (
               lower(manual_lines.memo) like {{ dbt.concat(["'%'", 'lower(milestones.item_detail)', "'%'"]) }}
               or (manual_lines.billing_period_start = milestones.billing_period_start
                   and manual_lines.amount = milestones.billing_amount)
           )
        where milestones.source_type = 'milestone'
    ) as ranked
    where coverage_rank = 1
),

covered as (
    select
        billed_amounts.*,
        case
            when keyed.invoice_id is not null then 'line_key'
            when milestone_cover.invoice_id is not null then 'manual_milestone'
            when period_cover.invoice_id is not null then 'manual_period'
        end as coverage_method,
        coalesce(keyed.invoice_id, milestone_cover.invoice_id, period_cover.invoice_id) as erp_invoice_id,
        coalesce(keyed.invoice_external_id, milestone_cover.invoice_external_id, period_cover.invoice_external_id)
            as erp_invoice_external_id,
        coalesce(keyed.invoice_date, milestone_cover.invoice_date, period_cover.invoice_date) as erp_invoice_date
    from billed_amounts
    left join keyed_coverage as keyed
        on keyed.line_source_type = billed_amounts.source_type
       and keyed.line_source_id = billed_amounts.source_id
    left join manual_milestone_coverage as milestone_cover
        on milestone_cover.source_id = billed_amounts.milestone_id
    left join manual_period_coverage as period_cover
        on period_cover.project_key = billed_amounts.project_key
       and period_cover.billing_period_start = billed_amounts.billing_period_start
       and period_cover.line_kind = billed_amounts.period_line_kind
)

-- The item columns arrive typed by the contracts of the facts they come from (the arms cast
-- only their literals and nulls): only what is computed here is cast to its contracted type.
select
    {{ surrogate_key(['source_type', 'source_id']) }} as billable_item_key,
    cast(source_type as {{ ps_type('string') }}) as source_type,
    source_id,
    cast({{ psp_line_external_id('source_type', 'source_id') }} as {{ ps_type('string') }}) as line_external_id,
    project_key,
    psa_project_id,
    erp_project_id,
    customer_key,
    contract_key,
    crm_contract_id,
    crm_opportunity_id,
    legal_entity_key,
    billing_model,
    worker_key,
    item_detail,
    service_date,
    billing_period_start,
    approved_at,
    billable_since_date,
    quantity,
    unit_rate,
    pricing_source,
    standard_unit_rate,
    currency_code,
    amount,
    cast(billing_currency_code as {{ ps_type('string') }}) as billing_currency_code,
    cast(billing_exchange_rate as {{ ps_type('number') }}) as billing_exchange_rate,
    cast(billing_unit_rate as {{ ps_type('money') }}) as billing_unit_rate,
    cast(billing_amount as {{ ps_type('money') }}) as billing_amount,
    cast('{{ var("reporting_currency") }}' as {{ ps_type('string') }}) as reporting_currency_code,
    exchange_rate_to_reporting,
    exchange_rate_date,
    {{ ps_convert_amount('amount', 'exchange_rate_to_reporting') }} as amount_reporting,
    billing_amount is not null as is_priced,
    erp_invoice_id is not null as is_invoiced,
    cast(coverage_method as {{ ps_type('string') }}) as coverage_method,
    erp_invoice_id,
    erp_invoice_external_id,
    erp_invoice_date,
    cast({{ dbt.datediff('billable_since_date', 'erp_invoice_date', 'day') }} as {{ ps_type('integer') }})
        as days_to_invoice,
    cast({{ dbt.datediff('billable_since_date', as_of_date(), 'day') }} as {{ ps_type('integer') }}) as age_days,
    coalesce(
        erp_invoice_id is null
        and {{ dbt.datediff('billable_since_date', as_of_date(), 'day') }} > {{ var('revenue_leakage_days') }},
        false
    ) as is_leakage,
    is_quarantined,
    quarantine_rule
from covered
