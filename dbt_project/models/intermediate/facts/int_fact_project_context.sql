{#- Grain: one row per source project record (source_system, source_record_id): a Kantata
    workspace or a NetSuite job, with what a fact row of that project carries from the
    dimensions: its project, customer, contract, legal entity and billing model, the currencies
    it is priced in (psa_currency_code, else currency_code), its rate card and the functional
    currency of its legal entity. The facts join it on their source project id instead of
    each resolving identity -> dim_project -> dim_legal_entity again. -#}
select
    identity.source_system,
    identity.source_record_id,
    identity.project_key,
    projects.customer_key,
    projects.contract_key,
    projects.legal_entity_key,
    projects.billing_model,
    projects.rate_card_id,
    projects.psa_currency_code,
    projects.currency_code,
    legal_entities.functional_currency_code
from {{ ref('int_project_identity') }} as identity
left join {{ ref('dim_project') }} as projects on projects.project_key = identity.project_key
left join {{ ref('dim_legal_entity') }} as legal_entities
    on legal_entities.legal_entity_key = projects.legal_entity_key
