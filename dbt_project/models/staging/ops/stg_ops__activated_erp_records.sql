{#- Grain: one row per ERP customer or project the activation flow created or adopted
    (erp_platform, record_type, crm_record_id), in every ERP: the CRM record it was made for (the
    CRM account id for a customer, the opportunity id for a project) and the id the ERP gave it
    (NetSuite internal id; Dynamics 365 CustomerAccount / ProjectID). record_type is canonical:
    customer or project (NetSuite's ledger says job, Dynamics 365's project).

    int_project_billing_setup falls back on these ids when the ERP's own tables, ingested at
    the start of the run, do not have the record yet: a project activated in this run is
    billable in this run. The ids are the ones the next ingestion of the ERP reads back, so an
    invoice's payload is the same whichever side its ids came from. -#}
{%- set src = source('ops', 'outbox_activations') -%}
{%- set ledger = ps_optional_relation(src) -%}
{%- set cols = ps_source_columns(src) if ledger is not none else [] -%}

select
    cast(target_system as {{ ps_type('string') }}) as erp_platform,
    cast(case ledger_record_type when 'job' then 'project' else ledger_record_type end
        as {{ ps_type('string') }}) as record_type,
    crm_record_id,
    erp_record_id,
    posted_at
from (
    select
        {{ ps_column(cols, 'flow', 'flow', 'string') }},
        {{ ps_column(cols, 'target_system', 'target_system', 'string') }},
        {{ ps_column(cols, 'record_type', 'ledger_record_type', 'string') }},
        {{ ps_column(cols, 'external_id', 'crm_record_id', 'string') }},
        {{ ps_column(cols, 'target_id', 'erp_record_id', 'string') }},
        {{ ps_column(cols, 'posted_at', 'posted_at', 'timestamp') }}
    {{ ps_from_optional(src, ledger) }}
) as ledger_rows
where flow = 'project_activation'
  and target_system in {{ ps_role_in('erp') }}
  and ledger_record_type in ('customer', 'job', 'project')
  and erp_record_id is not null
