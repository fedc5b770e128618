{#- Grain: one row per project (project_key): what invoicing it in the ERP needs, as the ERP's
    own ids, and what is missing.
      erp_platform      the ERP the project is invoiced in: the one its primary ERP project is in,
                        else its customer's, else the one the activation flow posted it to, else
                        the estate's first declared ERP
      erp_project_id    the project's primary ERP project (NetSuite job, Dynamics 365 ProjectID),
                        else the one the activation flow made for its opportunity
                        (stg_ops__activated_erp_records)
      erp_customer_id   the project's parent customer, else the customer's primary ERP record,
                        else the customer the activation flow made for its account
      erp_subsidiary_id the subsidiary (legal entity) of the project's legal entity
      erp_currency_id   the ERP currency of the billing currency
    billing_blockers lists what stops an invoice (erp_customer, erp_project, legal_entity,
    currency, billing_model); the same names appear in erp_billing_transactions and
    kpi_unbilled_wip, so readiness and the outbound validation never disagree. -#}
with projects as (
    select * from {{ ref('dim_project') }}
),

erp_projects as (
    select erp_platform, project_id, customer_id
    from {{ ref('int_erp_projects') }}
),

-- Made by the activation flow, possibly earlier in this run, so not in the ERP tables yet.
activated as (
    select erp_platform, record_type, crm_record_id, erp_record_id
    from {{ ref('stg_ops__activated_erp_records') }}
),

customers as (
    select customer_key, erp_customer_id, erp_platform
    from {{ ref('dim_customer') }}
),

linked as (
    select
        projects.*,
        coalesce(
            projects.erp_platform, customers.erp_platform, activated_projects.erp_platform,
            '{{ ps_role_declared('erp')[0] }}'
        ) as billing_erp_platform
    from projects
    left join customers on customers.customer_key = projects.customer_key
    left join activated as activated_projects
        on activated_projects.record_type = 'project'
       and activated_projects.crm_record_id = projects.crm_opportunity_id
),

with_activated as (
    select
        linked.*,
        coalesce(linked.erp_project_id, activated_projects.erp_record_id) as linked_erp_project_id,
        activated_customers.erp_record_id as activated_erp_customer_id
    from linked
    left join activated as activated_projects
        on activated_projects.erp_platform = linked.billing_erp_platform
       and activated_projects.record_type = 'project'
       and activated_projects.crm_record_id = linked.crm_opportunity_id
    left join activated as activated_customers
        on activated_customers.erp_platform = linked.billing_erp_platform
       and activated_customers.record_type = 'customer'
       and activated_customers.crm_record_id = linked.crm_account_id
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
        cast(projects.billing_erp_platform as {{ ps_type('string') }}) as erp_platform,
        projects.linked_erp_project_id as erp_project_id,
        coalesce(
            erp_projects.customer_id,
            case when customers.erp_platform = projects.billing_erp_platform then customers.erp_customer_id end,
            projects.activated_erp_customer_id
        ) as erp_customer_id,
        legal_entities.erp_subsidiary_id,
        currencies.erp_currency_id,
        projects.is_deleted
    from with_activated as projects
    left join erp_projects
        on erp_projects.erp_platform = projects.billing_erp_platform
       and erp_projects.project_id = projects.linked_erp_project_id
    left join customers on customers.customer_key = projects.customer_key
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
