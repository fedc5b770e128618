{#- Grain: one row per won, live opportunity that still needs something set up
    (opportunity_id): an ERP customer, an ERP project (NetSuite job, Dynamics 365 project), a PSA
    workspace, or the
    ERP project id written back to the CRM opportunity.

    Everything the ERP needs, by the ids the writeback upserts with: customer external id =
    Salesforce Account Id, project external id = Salesforce Opportunity Id, NetSuite subsidiary
    and currency internal ids, company and project names, billing model, tax code and dates
    (the contract's, else the opportunity's). validation_errors lists what is missing before
    anything may be sent (comma-separated, null when complete):
      account        no live CRM account on the opportunity
      contract       no live contract for the opportunity
      legal_entity   the legal entity named is not a NetSuite subsidiary
      currency       no currency, or one NetSuite does not know
      billing_model  missing or not one of Time and Materials, Fixed Fee, Milestone
      tax_code       missing
      quarantined    the newest version of the opportunity, its account or its contract is in
                     quarantine: this row reads an older version, so nothing is set up from it
                     (validation_detail names the record and the rule; DECISIONLOG.md,
                     "Quarantine holds")
    A deal that fails stays here with its reasons until its data is fixed; one that is fully
    set up drops out. activation_request_id = psp:act:<opportunity id>. -#}
with won as (
    select *
    from {{ ref('fct_opportunities') }}
    where is_won
      and not is_deleted
),

accounts as (
    select crm_platform, account_id, account_name, is_deleted, is_quarantined, quarantine_rule
    from {{ ref('int_crm_accounts') }}
),

crm_contracts as (
    select crm_platform, contract_id, is_quarantined, quarantine_rule
    from {{ ref('int_crm_contracts') }}
),

requests as (
    select
        won.opportunity_id,
        won.crm_platform,
        -- A project not yet in a PSA is created in the estate's first declared PSA.
        coalesce(projects.psa_platform, '{{ ps_role_declared('psa')[0] }}') as psa_platform,
        -- The ERP it posts to: where the project, else the customer, already lives, else the
        -- estate's first declared ERP.
        coalesce(projects.erp_platform, customers.erp_platform, '{{ ps_role_declared('erp')[0] }}')
            as erp_platform,
        won.opportunity_name,
        won.crm_account_id,
        accounts.account_name,
        accounts.is_deleted as is_account_deleted,
        won.customer_key,
        customers.erp_customer_id,
        won.project_key,
        projects.psa_project_id,
        projects.erp_project_id,
        projects.project_name as psa_project_name,
        won.contract_key,
        won.crm_contract_id,
        contracts.is_deleted as is_contract_deleted,
        won.legal_entity_key,
        won.legal_entity_name,
        legal_entities.erp_subsidiary_id,
        won.contract_currency_code as currency_code,
        currencies.erp_currency_id,
        won.billing_model,
        nullif(trim(won.tax_code), '') as tax_code,
        won.close_date,
        won.contract_start_date,
        won.contract_end_date,
        won.crm_erp_project_id,
        won.activation_status,
        won.source_updated_at,
        won.is_quarantined as is_opportunity_quarantined,
        won.quarantine_rule as opportunity_quarantine_rule,
        accounts.is_quarantined as is_account_quarantined,
        accounts.quarantine_rule as account_quarantine_rule,
        crm_contracts.is_quarantined as is_contract_quarantined,
        crm_contracts.quarantine_rule as contract_quarantine_rule
    from won
    left join accounts on accounts.crm_platform = won.crm_platform and accounts.account_id = won.crm_account_id
    left join crm_contracts
        on crm_contracts.crm_platform = won.crm_platform and crm_contracts.contract_id = won.crm_contract_id
    left join {{ ref('dim_customer') }} as customers on customers.customer_key = won.customer_key
    left join {{ ref('dim_project') }} as projects on projects.project_key = won.project_key
    left join {{ ref('dim_contract') }} as contracts on contracts.contract_key = won.contract_key
    left join {{ ref('dim_legal_entity') }} as legal_entities
        on legal_entities.legal_entity_key = won.legal_entity_key
    left join {{ ref('dim_currency') }} as currencies on currencies.currency_code = won.contract_currency_code
),

needs as (
    select
        requests.*,
        erp_customer_id is null as needs_erp_customer,
        erp_project_id is null as needs_erp_project,
        psa_project_id is null as needs_psa_workspace,
        erp_project_id is null or coalesce(crm_erp_project_id, '') <> erp_project_id as needs_crm_update
    from requests
),

validated as (
    select
        cast({{ dbt.concat(["'psp:act:'", 'opportunity_id']) }} as {{ ps_type('string') }}) as activation_request_id,
        opportunity_id,
        crm_platform,
        psa_platform,
        cast(erp_platform as {{ ps_type('string') }}) as erp_platform,
        opportunity_id as project_external_id,
        crm_account_id as customer_external_id,
        customer_key,
        project_key,
        cast(account_name as {{ ps_type('string') }}) as company_name,
        cast(coalesce(psa_project_name, opportunity_name) as {{ ps_type('string') }}) as project_name,
        erp_subsidiary_id,
        legal_entity_name,
        currency_code,
        erp_currency_id,
        billing_model,
        tax_code,
        close_date as won_date,
        coalesce(contract_start_date, close_date) as start_date,
        contract_end_date as end_date,
        crm_contract_id,
        erp_customer_id as existing_erp_customer_id,
        erp_project_id as existing_erp_project_id,
        psa_project_id as existing_psa_project_id,
        activation_status as crm_activation_status,
        needs_erp_customer,
        needs_erp_project,
        needs_psa_workspace,
        needs_crm_update,
        cast({{ ps_failed_checks([
            ('account', 'crm_account_id is null or account_name is null or coalesce(is_account_deleted, false)'),
            ('contract', 'crm_platform in ' ~ ps_crms_with_contracts()
                         ~ ' and (crm_contract_id is null or coalesce(is_contract_deleted, false))'),
            ('legal_entity', 'erp_subsidiary_id is null'),
            ('currency', 'erp_currency_id is null'),
            ('billing_model', "billing_model is null or billing_model not in ('Time and Materials', 'Fixed Fee', 'Milestone')"),
            ('tax_code', 'tax_code is null'),
            ('quarantined', 'coalesce(is_opportunity_quarantined or is_account_quarantined '
                            'or is_contract_quarantined, false)'),
        ]) }} as {{ ps_type('string') }}) as validation_errors,
        cast(nullif(concat_ws(chr(10),
            case when is_opportunity_quarantined
                 then concat('quarantined: opportunity ', opportunity_id, ' ', opportunity_quarantine_rule) end,
            case when is_account_quarantined
                 then concat('quarantined: account ', crm_account_id, ' ', account_quarantine_rule) end,
            case when is_contract_quarantined
                 then concat('quarantined: contract ', crm_contract_id, ' ', contract_quarantine_rule) end
        ), '') as {{ ps_type('string') }}) as validation_detail,
        coalesce(is_opportunity_quarantined or is_account_quarantined or is_contract_quarantined, false)
            as is_quarantined,
        source_updated_at
    from needs
    where needs_erp_customer or needs_erp_project or needs_psa_workspace or needs_crm_update
)

select
    validated.*,
    validation_errors is null as is_valid
from validated
