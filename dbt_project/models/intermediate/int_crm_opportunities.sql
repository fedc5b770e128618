{#- Grain: one row per CRM opportunity of every CRM the estate declares: Salesforce
    Opportunities, HubSpot deals.
    The role's records whatever the estate (macros/estate.sql: ps_estate_union); the columns
    are this model's documented ones. -#}
{{ ps_estate_union('crm_platform', [('salesforce', 'stg_salesforce__opportunities'), ('hubspot', 'stg_hubspot__deals')]) }}
