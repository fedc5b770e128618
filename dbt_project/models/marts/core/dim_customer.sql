{#- Grain: one row per real customer (customer_key): every CRM account (deleted ones
    flagged) and every ERP customer (NetSuite, Dynamics 365) no account matches (int_customer_identity).
    Authority per attribute (DECISIONLOG.md): name, industry, type, country and owner from the
    CRM; currency, legal entity and active status from the ERP when the customer exists there
    (it invoices), else the CRM. Each system's own value is kept next to the chosen one so
    master-data drift can be reported; *_source_system says which system won. -#}
with identity as (
    select * from {{ ref('int_customer_identity') }}
),

customers as (
    select
        customer_key,
        max(case when source_system in {{ ps_role_in('crm') }} then source_record_id end) as crm_account_id,
        max(case when source_system in {{ ps_role_in('crm') }} then source_system end) as crm_platform,
        max(case when source_system in {{ ps_role_in('erp') }} and is_primary_record then source_record_id end)
            as erp_customer_id,
        max(case when source_system in {{ ps_role_in('erp') }} and is_primary_record then source_system end) as erp_platform,
        cast(sum(case when source_system in {{ ps_role_in('erp') }} then 1 else 0 end) as {{ ps_type('integer') }})
            as erp_customer_record_count,
        coalesce(
            max(case when source_system in {{ ps_role_in('crm') }} then match_method end),
            max(case when source_system in {{ ps_role_in('erp') }} then match_method end)
        ) as match_method,
        max(case when is_primary_record then match_confidence end) as match_confidence
    from identity
    group by customer_key
),

accounts as (
    select * from {{ ref('int_crm_accounts') }}
),

erp_customers as (
    select * from {{ ref('int_erp_customers') }}
),

currency_refs as (
    select * from {{ ref('int_erp_currency_refs') }}
),

legal_entities as (
    select * from {{ ref('dim_legal_entity') }}
),

project_counts as (
    select
        customer_key,
        cast(count(distinct psa_project_id) as {{ ps_type('integer') }}) as psa_project_count,
        cast(count(distinct erp_project_id) as {{ ps_type('integer') }}) as erp_project_count
    from {{ ref('int_project_identity') }}
    where customer_key is not null
    group by customer_key
),

joined as (
    select
        customers.*,
        accounts.account_name as crm_customer_name,
        accounts.account_type,
        accounts.industry,
        accounts.billing_country,
        accounts.owner_id as crm_owner_id,
        accounts.currency_code as crm_currency_code,
        accounts.legal_entity_name as crm_legal_entity_name,
        crm_legal_entity.legal_entity_key as crm_legal_entity_key,
        accounts.created_at as crm_created_at,
        accounts.is_deleted as crm_is_deleted,
        erp_customers.customer_number as erp_customer_number,
        erp_customers.customer_name as erp_customer_name,
        erp_currency.currency_code as erp_currency_code,
        erp_legal_entity.legal_entity_key as erp_legal_entity_key,
        erp_legal_entity.legal_entity_name as erp_legal_entity_name,
        erp_customers.is_inactive as is_erp_inactive,
        erp_customers.created_at as erp_created_at,
        erp_customers.is_deleted as erp_is_deleted,
        coalesce(project_counts.psa_project_count, 0) as psa_project_count,
        coalesce(project_counts.erp_project_count, 0) as erp_project_count
    from customers
    left join accounts
        on accounts.crm_platform = customers.crm_platform and accounts.account_id = customers.crm_account_id
    left join erp_customers
        on erp_customers.erp_platform = customers.erp_platform
       and erp_customers.customer_id = customers.erp_customer_id
    left join currency_refs as erp_currency on erp_currency.currency_ref = erp_customers.currency_ref
    left join legal_entities as erp_legal_entity on erp_legal_entity.erp_subsidiary_id = erp_customers.subsidiary_id
    left join legal_entities as crm_legal_entity
        on crm_legal_entity.legal_entity_name_key = lower(trim(accounts.legal_entity_name))
    left join project_counts on project_counts.customer_key = customers.customer_key
)

select
    customer_key,
    crm_account_id,
    crm_platform,
    erp_customer_id,
    erp_platform,
    erp_customer_number,
    erp_customer_record_count,
    match_method,
    match_confidence,
    crm_account_id is not null as has_crm_account,
    erp_customer_id is not null as has_erp_customer,
    psa_project_count > 0 as has_psa_projects,
    psa_project_count,
    erp_project_count,
    coalesce(crm_customer_name, erp_customer_name) as customer_name,
    case when crm_customer_name is not null then crm_platform else erp_platform end as customer_name_source_system,
    crm_customer_name,
    erp_customer_name,
    coalesce(erp_currency_code, crm_currency_code) as currency_code,
    case
        when erp_currency_code is not null then erp_platform
        when crm_currency_code is not null then crm_platform
    end as currency_source_system,
    crm_currency_code,
    erp_currency_code,
    coalesce(erp_legal_entity_key, crm_legal_entity_key) as legal_entity_key,
    coalesce(erp_legal_entity_name, crm_legal_entity_name) as legal_entity_name,
    case
        when erp_legal_entity_name is not null then erp_platform
        when crm_legal_entity_name is not null then crm_platform
    end as legal_entity_source_system,
    crm_legal_entity_name,
    erp_legal_entity_name,
    account_type,
    industry,
    billing_country,
    crm_owner_id,
    case
        when coalesce(crm_is_deleted, true) and coalesce(erp_is_deleted, true) then 'deleted'
        when coalesce(is_erp_inactive, false) then 'inactive'
        else 'active'
    end as customer_status,
    coalesce(is_erp_inactive, false) as is_erp_inactive,
    crm_created_at,
    erp_created_at,
    coalesce(crm_is_deleted, true) and coalesce(erp_is_deleted, true) as is_deleted
from joined
