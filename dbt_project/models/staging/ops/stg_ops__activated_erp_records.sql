{#- Grain: one row per NetSuite customer or job the activation flow created or adopted
    (record_type, crm_record_id): the CRM record it was made for (Salesforce Account Id for a
    customer, Opportunity Id for a job) and the internal id NetSuite gave it.

    int_project_billing_setup falls back on these ids when the ERP's own tables, ingested at
    the start of the run, do not have the record yet: a project activated in this run is
    billable in this run. The ids are the ones the next ingestion of NetSuite reads back, so an
    invoice's payload is the same whichever side its ids came from. -#}
{%- set src = source('ops', 'outbox_activations') -%}
{%- set ledger = ps_optional_relation(src) -%}
{%- set cols = ps_source_columns(src) if ledger is not none else [] -%}

select
    record_type,
    crm_record_id,
    erp_record_id,
    posted_at
from (
    select
        {{ ps_column(cols, 'flow', 'flow', 'string') }},
        {{ ps_column(cols, 'target_system', 'target_system', 'string') }},
        {{ ps_column(cols, 'record_type', 'record_type', 'string') }},
        {{ ps_column(cols, 'external_id', 'crm_record_id', 'string') }},
        {{ ps_column(cols, 'target_id', 'erp_record_id', 'string') }},
        {{ ps_column(cols, 'posted_at', 'posted_at', 'timestamp') }}
    {{ ps_from_optional(src, ledger) }}
) as ledger_rows
where flow = 'project_activation'
  and target_system = 'netsuite'
  and record_type in ('customer', 'job')
  and erp_record_id is not null
