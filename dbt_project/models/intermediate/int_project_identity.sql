{#- Grain: one row per source project record, i.e. every PSA project of the estate's PSAs
    (Kantata workspaces, Certinia projects: int_psa_projects, source_system the PSA) and every
    ERP project (NetSuite job, Dynamics 365 project: int_erp_projects), with the project_key of the delivery project it belongs to.

    Every PSA workspace is a project of its own (PSA is where delivery happens). An ERP job
    joins the workspace it matches, first rule that applies (DECISIONLOG.md):
      1. opportunity_id     ERP CRM link (NetSuite job externalid, Dynamics 365
                            PsCrmOpportunityId) = workspace's opportunity     confidence 1.00
      2. crm_erp_reference  the opportunity's ERP_Project_Id__c = job id             confidence 0.95
    Pairs are mutual best candidates; a further job matching an already paired workspace is
    an ERP duplicate (non-primary record of that project); unmatched jobs are projects of
    their own (erp_only). Names are not matched: project titles repeat across customers.
    customer_key (same on every record of a project) comes from the opportunity's CRM account
    when there is one, else from the ERP job's parent customer (int_customer_identity). -#}
with psa_projects as (
    select project_id, opportunity_id, psa_platform
    from {{ ref('int_psa_projects') }}
    where project_id is not null
),

erp_projects as (
    select project_id, erp_platform, opportunity_id, customer_id
    from {{ ref('int_erp_projects') }}
    where project_id is not null
),

opportunities as (
    select opportunity_id, account_id, erp_project_id, crm_platform
    from {{ ref('int_crm_opportunities') }}
    where opportunity_id is not null
),

customer_identity as (
    select source_system, source_record_id, customer_key
    from {{ ref('int_customer_identity') }}
),

candidate_pairs as (
    select
        psa.project_id as psa_project_id,
        erp.project_id as erp_project_id,
        'opportunity_id' as match_method,
        1.00 as match_confidence,
        1 as match_rank
    from psa_projects as psa
    inner join erp_projects as erp on erp.opportunity_id = psa.opportunity_id

    union all

    select psa.project_id, erp.project_id, 'crm_erp_reference', 0.95, 2
    from psa_projects as psa
    inner join opportunities as opp on opp.opportunity_id = psa.opportunity_id
    inner join erp_projects as erp on erp.project_id = opp.erp_project_id
),

primary_pairs as (
    select * from {{ mutual_best_pairs('candidate_pairs', 'psa_project_id', 'erp_project_id') }} as pairs
),

duplicate_erp_projects as (
    select * from {{ duplicate_matches('candidate_pairs', 'primary_pairs', 'psa_project_id', 'erp_project_id') }} as dups
),

psa_records as (
    select
        {{ surrogate_key(['psa.psa_platform', 'psa.project_id']) }} as project_key,
        psa.psa_platform as source_system,
        psa.project_id as source_record_id,
        psa.project_id as psa_project_id,
        p.erp_project_id,
        coalesce(psa.opportunity_id, erp.opportunity_id) as crm_opportunity_id,
        coalesce(p.match_method, 'psa_only') as match_method,
        cast(p.match_confidence as {{ ps_type('number') }}) as match_confidence,
        true as is_primary_record
    from psa_projects as psa
    left join primary_pairs as p on p.psa_project_id = psa.project_id
    left join erp_projects as erp on erp.project_id = p.erp_project_id
),

matched_pairs as (
    select psa_project_id, erp_project_id, match_method, match_confidence, true as is_primary_record
    from primary_pairs
    union all
    select psa_project_id, erp_project_id, match_method, match_confidence, false
    from duplicate_erp_projects
),

erp_records as (
    select
        case
            when matched.psa_project_id is not null
                then {{ surrogate_key(['psa.psa_platform', 'matched.psa_project_id']) }}
            else {{ surrogate_key(['erp.erp_platform', 'erp.project_id']) }}
        end as project_key,
        erp.erp_platform as source_system,
        erp.project_id as source_record_id,
        matched.psa_project_id,
        erp.project_id as erp_project_id,
        coalesce(psa.opportunity_id, erp.opportunity_id) as crm_opportunity_id,
        coalesce(matched.match_method, 'erp_only') as match_method,
        cast(matched.match_confidence as {{ ps_type('number') }}) as match_confidence,
        matched.is_primary_record
    from erp_projects as erp
    left join matched_pairs as matched on matched.erp_project_id = erp.project_id
    left join psa_projects as psa on psa.project_id = matched.psa_project_id
),

records as (
    select * from psa_records
    union all
    select
        project_key, source_system, source_record_id, psa_project_id, erp_project_id, crm_opportunity_id,
        match_method, match_confidence, coalesce(is_primary_record, true) as is_primary_record
    from erp_records
),

project_customers as (
    select
        records.project_key,
        max(crm_customer.customer_key) as crm_customer_key,
        max(case when records.is_primary_record then erp_customer.customer_key end) as erp_customer_key
    from records
    left join opportunities as opp on opp.opportunity_id = records.crm_opportunity_id
    left join customer_identity as crm_customer
        on crm_customer.source_system = opp.crm_platform and crm_customer.source_record_id = opp.account_id
    left join erp_projects as erp on erp.project_id = records.erp_project_id
    left join customer_identity as erp_customer
        on erp_customer.source_system = erp.erp_platform and erp_customer.source_record_id = erp.customer_id
    group by records.project_key
)

select
    records.*,
    coalesce(project_customers.crm_customer_key, project_customers.erp_customer_key) as customer_key,
    case
        when project_customers.crm_customer_key is not null then 'crm_opportunity_account'
        when project_customers.erp_customer_key is not null then 'erp_parent_customer'
    end as customer_key_source
from records
inner join project_customers on project_customers.project_key = records.project_key
