{#- Grain: one row per delivery project (project_key): a PSA project (Kantata workspace,
    Certinia project) with its matched
    ERP project (NetSuite job, Dynamics 365 project), or an ERP project no workspace matches (int_project_identity).
    Authority per attribute (DECISIONLOG.md): name, dates, status, budget and rate card from
    the PSA; billing model from the CRM contract, else the opportunity; billing currency and
    legal entity from the ERP job, else the CRM contract, else the opportunity (else the PSA
    currency). Each system's own currency is kept for drift reporting. -#}
with identity as (
    select * from {{ ref('int_project_identity') }}
),

projects as (
    select
        project_key,
        max(case when source_system in {{ ps_role_in('psa') }} then source_record_id end) as psa_project_id,
        max(case when source_system in {{ ps_role_in('psa') }} then source_system end) as psa_platform,
        max(case when source_system in {{ ps_role_in('erp') }} and is_primary_record then source_record_id end)
            as erp_project_id,
        max(case when source_system in {{ ps_role_in('erp') }} and is_primary_record then source_system end) as erp_platform,
        cast(sum(case when source_system in {{ ps_role_in('erp') }} then 1 else 0 end) as {{ ps_type('integer') }})
            as erp_project_record_count,
        coalesce(
            max(case when source_system in {{ ps_role_in('psa') }} then crm_opportunity_id end),
            max(case when source_system in {{ ps_role_in('erp') }} and is_primary_record then crm_opportunity_id end)
        ) as crm_opportunity_id,
        coalesce(
            max(case when source_system in {{ ps_role_in('psa') }} then match_method end),
            max(case when source_system in {{ ps_role_in('erp') }} and is_primary_record then match_method end)
        ) as match_method,
        max(case when is_primary_record then match_confidence end) as match_confidence,
        max(customer_key) as customer_key,
        max(customer_key_source) as customer_key_source
    from identity
    group by project_key
),

psa as (
    select * from {{ ref('int_psa_projects') }}
),

erp as (
    select * from {{ ref('int_erp_projects') }}
),

opportunities as (
    select * from {{ ref('int_crm_opportunities') }}
),

-- The opportunity's contract: the one it names, else the latest contract naming it.
opportunity_contracts as (
    select opportunity_id, contract_id
    from (
        select
            opportunities.opportunity_id,
            contracts.contract_id,
            row_number() over (
                partition by opportunities.opportunity_id
                order by
                    case when contracts.contract_id = opportunities.contract_id then 0 else 1 end asc,
                    contracts.is_deleted asc,
                    contracts.start_date desc nulls last,
                    contracts.contract_id desc
            ) as contract_rank
        from opportunities
        inner join {{ ref('int_crm_contracts') }} as contracts
            on contracts.contract_id = opportunities.contract_id
            or contracts.opportunity_id = opportunities.opportunity_id
    ) as ranked
    where contract_rank = 1
),

contracts as (
    select * from {{ ref('dim_contract') }}
),

legal_entities as (
    select * from {{ ref('dim_legal_entity') }}
),

currency_refs as (
    select * from {{ ref('int_erp_currency_refs') }}
),

joined as (
    select
        projects.*,
        psa.project_name as psa_project_name,
        psa.project_status as psa_project_status,
        psa.status_message as psa_status_message,
        psa.currency_code as psa_currency_code,
        psa.budget_amount as psa_budget_amount,
        psa.rate_card_id,
        psa.start_date as psa_start_date,
        psa.due_date as psa_due_date,
        psa.is_archived,
        psa.created_at as psa_created_at,
        psa.is_deleted as psa_is_deleted,
        erp.project_number as erp_project_number,
        erp.project_name as erp_project_name,
        erp.entity_status as erp_entity_status,
        erp.start_date as erp_start_date,
        erp.projected_end_date as erp_projected_end_date,
        erp.created_at as erp_created_at,
        erp.is_deleted as erp_is_deleted,
        erp_currency.currency_code as erp_currency_code,
        erp_legal_entity.legal_entity_key as erp_legal_entity_key,
        erp_legal_entity.legal_entity_name as erp_legal_entity_name,
        opportunities.opportunity_id as matched_opportunity_id,
        opportunities.opportunity_name,
        opportunities.crm_platform,
        opportunities.account_id as crm_account_id,
        opportunities.stage_name as opportunity_stage_name,
        opportunities.is_won as is_opportunity_won,
        opportunities.close_date as opportunity_close_date,
        opportunities.currency_code as opportunity_currency_code,
        opportunities.billing_model as opportunity_billing_model,
        opportunities.legal_entity_name as opportunity_legal_entity_name,
        opportunities.is_deleted as opportunity_is_deleted,
        contracts.contract_key,
        contracts.crm_contract_id,
        contracts.billing_model as contract_billing_model,
        contracts.currency_code as contract_currency_code,
        contracts.legal_entity_key as contract_legal_entity_key,
        contracts.legal_entity_name as contract_legal_entity_name,
        opportunity_legal_entity.legal_entity_key as opportunity_legal_entity_key
    from projects
    left join psa on psa.psa_platform = projects.psa_platform and psa.project_id = projects.psa_project_id
    left join erp on erp.erp_platform = projects.erp_platform and erp.project_id = projects.erp_project_id
    left join currency_refs as erp_currency on erp_currency.currency_ref = erp.currency_ref
    left join legal_entities as erp_legal_entity on erp_legal_entity.erp_subsidiary_id = erp.subsidiary_id
    left join opportunities on opportunities.opportunity_id = projects.crm_opportunity_id
    left join opportunity_contracts on opportunity_contracts.opportunity_id = projects.crm_opportunity_id
    left join contracts on contracts.crm_contract_id = opportunity_contracts.contract_id
    left join legal_entities as opportunity_legal_entity
        on opportunity_legal_entity.legal_entity_name_key = lower(trim(opportunities.legal_entity_name))
)

select
    project_key,
    psa_project_id,
    cast(psa_platform as {{ ps_type('string') }}) as psa_platform,
    erp_project_id,
    erp_platform,
    erp_project_number,
    erp_project_record_count,
    crm_opportunity_id,
    crm_contract_id,
    contract_key,
    customer_key,
    customer_key_source,
    crm_account_id,
    match_method,
    match_confidence,
    psa_project_id is not null as has_psa_project,
    erp_project_id is not null as has_erp_project,
    matched_opportunity_id is not null as has_crm_opportunity,
    coalesce(psa_project_name, erp_project_name, opportunity_name) as project_name,
    case
        when psa_project_id is not null then psa_platform
        when erp_project_id is not null then erp_platform
    end as project_name_source_system,
    coalesce(psa_project_status, {{ erp_project_status('erp_entity_status') }}) as project_status,
    psa_status_message,
    erp_entity_status,
    coalesce(is_archived, false) as is_archived,
    coalesce(contract_billing_model, opportunity_billing_model) as billing_model,
    case
        when contract_billing_model is not null then crm_platform || '_contract'
        when opportunity_billing_model is not null then crm_platform || '_opportunity'
    end as billing_model_source,
    coalesce(erp_currency_code, contract_currency_code, opportunity_currency_code, psa_currency_code)
        as currency_code,
    case
        when erp_currency_code is not null then erp_platform
        when contract_currency_code is not null then crm_platform || '_contract'
        when opportunity_currency_code is not null then crm_platform || '_opportunity'
        when psa_currency_code is not null then psa_platform
    end as currency_source_system,
    psa_currency_code,
    erp_currency_code,
    coalesce(contract_currency_code, opportunity_currency_code) as crm_currency_code,
    coalesce(erp_legal_entity_key, contract_legal_entity_key, opportunity_legal_entity_key)
        as legal_entity_key,
    coalesce(erp_legal_entity_name, contract_legal_entity_name, opportunity_legal_entity_name)
        as legal_entity_name,
    case
        when erp_legal_entity_name is not null then erp_platform
        when contract_legal_entity_name is not null then crm_platform || '_contract'
        when opportunity_legal_entity_name is not null then crm_platform || '_opportunity'
    end as legal_entity_source_system,
    rate_card_id,
    psa_budget_amount as budget_amount,
    psa_currency_code as budget_currency_code,
    coalesce(psa_start_date, erp_start_date) as start_date,
    coalesce(psa_due_date, erp_projected_end_date) as end_date,
    opportunity_stage_name,
    coalesce(is_opportunity_won, false) as is_opportunity_won,
    case when is_opportunity_won then opportunity_close_date end as deal_won_date,
    psa_created_at,
    erp_created_at,
    coalesce(psa_is_deleted, true) and coalesce(erp_is_deleted, true) as is_deleted
from joined
