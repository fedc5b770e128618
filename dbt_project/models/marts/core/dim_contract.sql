{#- Grain: one row per CRM contract (int_crm_contracts: Salesforce Contracts; the CRM holds the commercial agreement).
    Legal entity resolves the contract's Legal_Entity__c name to dim_legal_entity. The value
    is converted at the contract's start date (as_of_date when it has none) to the reporting
    currency and to the legal entity's functional currency, with the rate and rate date used. -#}
with contracts as (
    select * from {{ ref('int_crm_contracts') }}
    where contract_id is not null
),

customer_identity as (
    select source_record_id as account_id, source_system as crm_platform, customer_key
    from {{ ref('int_customer_identity') }}
    where source_system in {{ ps_role_in('crm') }}
),

legal_entities as (
    select legal_entity_key, legal_entity_name_key, functional_currency_code
    from {{ ref('dim_legal_entity') }}
),

rates as (
    select date_day, currency_code, exchange_rate
    from {{ ref('int_exchange_rates_daily') }}
),

enriched as (
    select
        contracts.*,
        customer_identity.customer_key,
        legal_entities.legal_entity_key,
        legal_entities.functional_currency_code,
        coalesce(contracts.start_date, {{ as_of_date() }}) as rate_date,
        case
            when lower(contracts.payment_terms) like '%receipt%' then 0
            else {{ safe_cast("nullif(regexp_replace(contracts.payment_terms, '[^0-9]', '', 'g'), '')",
                              ps_type('integer')) }}
        end as payment_terms_days
    from contracts
    left join customer_identity
        on customer_identity.crm_platform = contracts.crm_platform and customer_identity.account_id = contracts.account_id
    left join legal_entities on legal_entities.legal_entity_name_key = lower(trim(contracts.legal_entity_name))
)

select
    {{ surrogate_key(['enriched.contract_id']) }} as contract_key,
    enriched.contract_id as crm_contract_id,
    enriched.contract_number,
    enriched.customer_key,
    enriched.account_id as crm_account_id,
    enriched.opportunity_id as crm_opportunity_id,
    enriched.contract_status,
    enriched.billing_model,
    enriched.currency_code,
    enriched.legal_entity_key,
    enriched.legal_entity_name,
    enriched.payment_terms,
    cast(enriched.payment_terms_days as {{ ps_type('integer') }}) as payment_terms_days,
    enriched.tax_code,
    enriched.start_date,
    enriched.end_date,
    enriched.contract_term_months,
    enriched.contract_value,
    enriched.functional_currency_code,
    {{ ps_convert_amount('enriched.contract_value', 'transaction_rate.exchange_rate',
                         'functional_rate.exchange_rate') }} as contract_value_functional,
    cast('{{ var("reporting_currency") }}' as {{ ps_type('string') }}) as reporting_currency_code,
    {{ ps_convert_amount('enriched.contract_value', 'transaction_rate.exchange_rate') }}
        as contract_value_reporting,
    transaction_rate.exchange_rate as exchange_rate_to_reporting,
    enriched.rate_date as exchange_rate_date,
    enriched.contract_status = 'Activated'
        and coalesce(enriched.start_date, {{ as_of_date() }}) <= {{ as_of_date() }}
        and coalesce(enriched.end_date, {{ open_end_date() }}) >= {{ as_of_date() }}
        and not enriched.is_deleted as is_active_as_of,
    enriched.created_at,
    enriched.is_deleted
from enriched
left join rates as transaction_rate
    on transaction_rate.currency_code = enriched.currency_code
   and transaction_rate.date_day = enriched.rate_date
left join rates as functional_rate
    on functional_rate.currency_code = enriched.functional_currency_code
   and functional_rate.date_day = enriched.rate_date
