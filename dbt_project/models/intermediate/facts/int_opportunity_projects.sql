{#- Grain: one row per CRM opportunity with a delivery project (crm_opportunity_id): the deal's
    project_key. A deal delivered by several workspaces counts once: the first-created live PSA
    project wins, else its ERP project (dim_project). fct_opportunities and the recurring fees
    read the deal's project here, so both name the same one. -#}
select crm_opportunity_id, project_key
from (
    select
        crm_opportunity_id,
        project_key,
        row_number() over (
            partition by crm_opportunity_id
            order by has_psa_project desc, is_deleted asc, psa_created_at asc nulls last, project_key asc
        ) as project_rank
    from {{ ref('dim_project') }}
    where crm_opportunity_id is not null
) as ranked
where project_rank = 1
