{#- Grain: one row per CRM opportunity (opportunity_id: a Salesforce Opportunity or a HubSpot deal); deleted ones kept, flagged.
    The opportunity's contract is the one it names, else the latest contract naming it (the
    rule of dim_project). Commercial terms follow the contract, else the opportunity: billing
    model, currency, legal entity (resolved to dim_legal_entity by name) and tax code.
    amount converts at the close date to the reporting currency and to the legal entity's
    functional currency; weighted_amount = amount x probability. project_key is the delivery
    project of the deal (its PSA project, else its NetSuite job). -#}
with opportunities as (
    select *
    from {{ ref('int_crm_opportunities') }}
    where opportunity_id is not null
),

account_customers as (
    select source_record_id as account_id, source_system as crm_platform, customer_key
    from {{ ref('int_customer_identity') }}
    where source_system in {{ ps_role_in('crm') }}
),

contracts as (
    select * from {{ ref('dim_contract') }}
),

opportunity_contracts as (
    select opportunity_id, contract_key
    from (
        select
            opportunities.opportunity_id,
            contracts.contract_key,
            row_number() over (
                partition by opportunities.opportunity_id
                order by
                    case when contracts.crm_contract_id = opportunities.contract_id then 0 else 1 end asc,
                    contracts.is_deleted asc,
                    contracts.start_date desc nulls last,
                    contracts.crm_contract_id desc
            ) as contract_rank
        from opportunities
        inner join contracts
            on contracts.crm_contract_id = opportunities.contract_id
            or contracts.crm_opportunity_id = opportunities.opportunity_id
    ) as ranked
    where contract_rank = 1
),

deal_projects as (
    select crm_opportunity_id, project_key
    from {{ ref('int_opportunity_projects') }}
),

legal_entities as (
    select legal_entity_key, legal_entity_name, legal_entity_name_key, functional_currency_code
    from {{ ref('dim_legal_entity') }}
),

terms as (
    select
        opportunities.*,
        account_customers.customer_key,
        deal_projects.project_key,
        contracts.contract_key,
        contracts.crm_contract_id,
        contracts.contract_status,
        contracts.start_date as contract_start_date,
        contracts.end_date as contract_end_date,
        cast(coalesce(contracts.billing_model, opportunities.billing_model) as {{ ps_type('string') }}) as deal_billing_model,
        cast(coalesce(contracts.currency_code, opportunities.currency_code) as {{ ps_type('string') }}) as deal_currency_code,
        cast(coalesce(contracts.tax_code, opportunities.tax_code) as {{ ps_type('string') }}) as deal_tax_code,
        cast(coalesce(contracts.legal_entity_name, opportunities.legal_entity_name) as {{ ps_type('string') }}) as deal_legal_entity_name,
        cast(coalesce(contracts.legal_entity_key, opportunity_entity.legal_entity_key) as {{ ps_type('string') }}) as deal_legal_entity_key
    from opportunities
    left join account_customers
        on account_customers.crm_platform = opportunities.crm_platform
       and account_customers.account_id = opportunities.account_id
    left join deal_projects on deal_projects.crm_opportunity_id = opportunities.opportunity_id
    left join opportunity_contracts on opportunity_contracts.opportunity_id = opportunities.opportunity_id
    left join contracts on contracts.contract_key = opportunity_contracts.contract_key
    left join legal_entities as opportunity_entity
        on opportunity_entity.legal_entity_name_key = lower(trim(opportunities.legal_entity_name))
),

with_rates as (
    select
        terms.*,
        legal_entities.functional_currency_code,
        {{ ps_fact_rate_columns() }},
        {{ ps_money_product('coalesce(terms.probability_pct, 0) / 100.0', 'terms.amount') }} as weighted_amount
    from terms
    left join legal_entities on legal_entities.legal_entity_key = terms.deal_legal_entity_key
    {{ ps_join_fact_rates('terms.currency_code', 'legal_entities.functional_currency_code', 'terms.close_date') }}
)

select
    cast(opportunity_id as {{ ps_type('string') }}) as opportunity_id,
    cast(crm_platform as {{ ps_type('string') }}) as crm_platform,
    opportunity_name,
    customer_key,
    cast(account_id as {{ ps_type('string') }}) as crm_account_id,
    project_key,
    contract_key,
    crm_contract_id,
    contract_status,
    stage_name,
    opportunity_type,
    coalesce(is_won, false) as is_won,
    coalesce(is_closed, false) as is_closed,
    probability_pct,
    close_date,
    case when close_date is not null then {{ month_start('close_date') }} end as close_month_start_date,
    created_at,
    {{ to_firm_date('created_at') }} as created_date,
    contract_start_date,
    contract_end_date,
    deal_billing_model as billing_model,
    deal_tax_code as tax_code,
    deal_legal_entity_key as legal_entity_key,
    deal_legal_entity_name as legal_entity_name,
    deal_currency_code as contract_currency_code,
    currency_code,
    amount,
    weighted_amount,
    {{ ps_converted_amount_columns(
        functional=[('amount', 'amount_functional')],
        reporting=[('amount', 'amount_reporting'), ('weighted_amount', 'weighted_amount_reporting')],
        with_functional_exchange_rate=false) }},
    erp_project_id as crm_erp_project_id,
    activation_status,
    {{ ps_record_state_columns(loaded_at=none, with_deleted_at=false) }}
from with_rates
