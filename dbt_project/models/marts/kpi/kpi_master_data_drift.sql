{#- Grain: one row per drift finding (subject_type, subject_key, drift_attribute).

    customer findings, for customers known to both the CRM and the ERP, when the two disagree on
      name          normalised names differ (case, punctuation and a trailing legal form such as
                    Inc/Ltd/GmbH are ignored: "ACME Corp." = "Acme")
      currency      Account CurrencyIsoCode <> the NetSuite customer's currency
      legal_entity  Account Legal_Entity__c <> the NetSuite customer's subsidiary (case-insensitive)
      status        live / deleted in the CRM vs active / inactive / deleted in the ERP
    project findings
      erp_project   live time is logged on a project the ERP does not know (no NetSuite job):
                    it cannot be invoiced; hours_logged and time_value_reporting size it
    crm_value / erp_value hold each system's value; authoritative_system is the one the marts
    follow (DECISIONLOG.md, "Authoritative system per attribute"). -#}
with customers as (
    select * from {{ ref('dim_customer') }}
    where has_crm_account and has_erp_customer
),

accounts as (
    select crm_platform, account_id, is_deleted from {{ ref('int_crm_accounts') }}
),

erp_customers as (
    select erp_platform, customer_id, is_deleted, is_inactive from {{ ref('int_erp_customers') }}
),

customer_values as (
    select
        customers.customer_key,
        customers.customer_name,
        customers.crm_account_id,
        customers.crm_platform,
        customers.erp_customer_id,
        customers.erp_platform,
        customers.crm_customer_name,
        customers.erp_customer_name,
        customers.crm_currency_code,
        customers.erp_currency_code,
        customers.crm_legal_entity_name,
        customers.erp_legal_entity_name,
        case when accounts.is_deleted then 'deleted' else 'active' end as crm_status,
        case
            when erp_customers.is_deleted then 'deleted'
            when erp_customers.is_inactive then 'inactive'
            else 'active'
        end as erp_status
    from customers
    left join accounts
        on accounts.crm_platform = customers.crm_platform and accounts.account_id = customers.crm_account_id
    left join erp_customers
        on erp_customers.erp_platform = customers.erp_platform
       and erp_customers.customer_id = customers.erp_customer_id
),

customer_findings as (
    select customer_key, customer_name, crm_account_id, erp_customer_id, 'name' as drift_attribute,
           crm_customer_name as crm_value, erp_customer_name as erp_value, crm_platform as authoritative_system
    from customer_values
    where coalesce({{ normalize_name('crm_customer_name') }}, '') <> coalesce({{ normalize_name('erp_customer_name') }}, '')

    union all

    select customer_key, customer_name, crm_account_id, erp_customer_id, 'currency',
           crm_currency_code, erp_currency_code, erp_platform
    from customer_values
    where coalesce(upper(crm_currency_code), '') <> coalesce(upper(erp_currency_code), '')

    union all

    select customer_key, customer_name, crm_account_id, erp_customer_id, 'legal_entity',
           crm_legal_entity_name, erp_legal_entity_name, erp_platform
    from customer_values
    where coalesce(lower(trim(crm_legal_entity_name)), '') <> coalesce(lower(trim(erp_legal_entity_name)), '')

    union all

    select customer_key, customer_name, crm_account_id, erp_customer_id, 'status',
           crm_status, erp_status, erp_platform
    from customer_values
    where crm_status <> erp_status
),

project_time as (
    select
        project_key,
        sum(hours) as hours_logged,
        sum(billable_amount_reporting) as time_value_reporting
    from {{ ref('fct_time_entries') }}
    where not is_deleted
      and coalesce(approval_status, '') <> 'rejected'
    group by project_key
),

project_findings as (
    select
        projects.project_key,
        projects.project_name,
        projects.psa_project_id,
        projects.crm_opportunity_id,
        project_time.hours_logged,
        project_time.time_value_reporting
    from {{ ref('dim_project') }} as projects
    inner join project_time on project_time.project_key = projects.project_key
    where not projects.is_deleted
      and not projects.has_erp_project
)

select
    {{ surrogate_key(["'customer'", 'customer_key', 'drift_attribute']) }} as drift_key,
    cast('customer' as {{ ps_type('string') }}) as subject_type,
    customer_key as subject_key,
    customer_name as subject_name,
    crm_account_id as crm_record_id,
    erp_customer_id as erp_record_id,
    cast(null as {{ ps_type('string') }}) as psa_record_id,
    cast(drift_attribute as {{ ps_type('string') }}) as drift_attribute,
    crm_value,
    erp_value,
    cast(authoritative_system as {{ ps_type('string') }}) as authoritative_system,
    cast(null as {{ ps_type('number') }}) as hours_logged,
    cast(null as {{ ps_type('money') }}) as time_value_reporting
from customer_findings

union all

select
    {{ surrogate_key(["'project'", 'project_key', "'erp_project'"]) }},
    'project',
    project_key,
    project_name,
    crm_opportunity_id,
    cast(null as {{ ps_type('string') }}),
    psa_project_id,
    'erp_project',
    cast(null as {{ ps_type('string') }}),
    cast(null as {{ ps_type('string') }}),
    '{{ ps_role_declared('erp')[0] }}',
    cast(hours_logged as {{ ps_type('number') }}),
    cast(time_value_reporting as {{ ps_type('money') }})
from project_findings
