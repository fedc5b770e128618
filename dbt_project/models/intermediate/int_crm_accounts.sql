{#- Grain: one row per CRM account of every CRM the estate declares (crm_platform, account_id):
    Salesforce Accounts, and HubSpot companies when the estate declares HubSpot (their staging
    has the Salesforce columns). The CRM side of customer identity, whatever the estate. -#}
{{ ps_estate_union('crm_platform', [('salesforce', 'stg_salesforce__accounts'), ('hubspot', 'stg_hubspot__companies')]) }}
