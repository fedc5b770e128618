{#- Grain: one row per legal entity = NetSuite subsidiary (the ERP is the legal-entity master).
    CRM records name their legal entity in Legal_Entity__c; marts resolve that name to this
    dimension case-insensitively (legal_entity_name_key). -#}
with subsidiaries as (
    select * from {{ ref('int_erp_legal_entities') }}
    where subsidiary_id is not null
),

currency_refs as (
    select * from {{ ref('int_erp_currency_refs') }}
)

select
    {{ surrogate_key(['subsidiaries.subsidiary_id']) }} as legal_entity_key,
    subsidiaries.subsidiary_id as erp_subsidiary_id,
    subsidiaries.subsidiary_name as legal_entity_name,
    lower(trim(subsidiaries.subsidiary_name)) as legal_entity_name_key,
    subsidiaries.country,
    currency_refs.currency_code as functional_currency_code,
    subsidiaries.is_inactive,
    subsidiaries.is_deleted
from subsidiaries
left join currency_refs on currency_refs.currency_ref = subsidiaries.currency_ref
