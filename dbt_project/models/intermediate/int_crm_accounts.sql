{#- Grain: one row per CRM account of every CRM the estate declares (crm_platform, account_id):
    Salesforce Accounts, and HubSpot companies when the estate declares HubSpot (their staging
    has the Salesforce columns). The CRM side of customer identity, whatever the estate. -#}
{%- set crms = [('salesforce', 'stg_salesforce__accounts')] -%}
{%- if ps_declares('hubspot') -%}
  {%- do crms.append(('hubspot', 'stg_hubspot__companies')) -%}
{%- endif -%}

{% for platform, model in crms %}
select
    '{{ platform }}' as crm_platform,
    account_id,
    account_name,
    account_type,
    industry,
    billing_country,
    currency_code,
    erp_customer_id,
    legal_entity_name,
    owner_id,
    created_at,
    last_modified_at,
    source_updated_at,
    is_deleted,
    deleted_at,
    _loaded_at,
    is_quarantined,
    quarantined_at,
    quarantine_rule
from {{ ref(model) }}
{% if not loop.last %}union all{% endif %}
{% endfor %}
