{#- Grain: one row per CRM contract of every CRM the estate declares: Salesforce Contracts
    (HubSpot has no contract object: a HubSpot-only estate has none, and its projects take their
    terms from the deal).
    The role's records whatever the estate (macros/estate.sql: ps_estate_union); the columns
    are this model's documented ones. -#}
{{ ps_estate_union('crm_platform', [('salesforce', 'stg_salesforce__contracts')]) }}
