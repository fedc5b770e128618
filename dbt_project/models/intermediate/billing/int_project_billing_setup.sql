{#- Grain: one row per project (project_key): what invoicing it in the ERP needs, as NetSuite
    internal ids, and what is missing.
      erp_project_id         the project's primary NetSuite job, else the job the activation flow
                        made for its opportunity (stg_ops__activated_erp_records)
      erp_customer_id    the job's parent customer, else the customer's primary ERP record,
                        else the customer the activation flow made for its account
      erp_subsidiary_id  the subsidiary of the project's legal entity
      erp_currency_id    the NetSuite currency of the billing currency
    billing_blockers lists what stops an invoice (erp_customer, erp_project, legal_entity,
    currency, billing_model); the same names appear in erp_billing_transactions and
    kpi_unbilled_wip, so readiness and the outbound validation never disagree. -#}
with projects as (
    select * from {{ ref('dim_project') }}
),

erp_jobs as (
    select project_id, customer_id
    from {{ ref('stg_netsuite__projects') }}
),

-- Made by the activation flow, possibly earlier in this run, so not in the ERP tables yet.
activated as (
    select record_type, crm_record_id, erp_record_id
    from {{ ref('stg_ops__activated_erp_records') }}
),

linked as (
    select
        projects.*,
        coalesce(projects.erp_project_id, activated_jobs.erp_record_id) as linked_erp_project_id,
        activated_customers.erp_record_id as activated_erp_customer_id
    from projects
    left join activated as activated_jobs
        on activated_jobs.record_type = 'job'
       and activated_jobs.crm_record_id = projects.crm_opportunity_id
    left join activated as activated_customers
        on activated_customers.record_type = 'customer'
       and activated_customers.crm_record_id = projects.crm_account_id
),

setup as (
    select
        projects.project_key,
        projects.psa_project_id,
        projects.customer_key,
        projects.contract_key,
        projects.crm_contract_id,
        projects.crm_opportunity_id,
        projects.legal_entity_key,
        projects.billing_model,
        projects.currency_code as billing_currency_code,
        projects.linked_erp_project_id as erp_project_id,
        coalesce(erp_jobs.customer_id, customers.erp_customer_id, projects.activated_erp_customer_id)
            as erp_customer_id,
        legal_entities.erp_subsidiary_id,
        currencies.erp_currency_id,
        projects.is_deleted
    from linked as projects
    left join erp_jobs on erp_jobs.project_id = projects.linked_erp_project_id
    left join {{ ref('dim_customer') }} as customers on customers.customer_key = projects.customer_key
    left join {{ ref('dim_legal_entity') }} as legal_entities
        on legal_entities.legal_entity_key = projects.legal_entity_key
    left join {{ ref('dim_currency') }} as currencies on currencies.currency_code = projects.currency_code
)

select
    setup.*,
    {{ ps_failed_checks([
        ('erp_customer', 'erp_customer_id is null'),
        ('erp_project', 'erp_project_id is null'),
        ('legal_entity', 'erp_subsidiary_id is null'),
        ('currency', 'erp_currency_id is null'),
        ('billing_model', 'billing_model is null'),
    ]) }} as billing_blockers
from setup
