{{ config(
    materialized='incremental',
    unique_key='invoice_line_id',
    incremental_strategy='delete+insert',
    on_schema_change='append_new_columns',
) }}
{#- Grain: one row per ERP invoice line (int_erp_invoice_lines: NetSuite "<invoice id>|<line id>",
    Dynamics 365 "<dataAreaId>|<invoice number>|<line number>"), with its invoice's header; a line is deleted when it or its invoice is.

    billing_period_start, the month the invoice bills (DECISIONLOG.md, "Billing and invoice
    coverage"): the YYYY-MM our writeback puts at the end of the invoice external id, else a
    YYYY-MM in the invoice memo (how the firm keys manual invoices), else the month before the
    invoice date (work is invoiced in arrears). line_kind (time, expense, milestone) comes
    from the item; line_source_type / line_source_id from custcol_ps_line_key when it is one
    of our line ids (psp:inl:<source type>:<source id>). Amounts are in the invoice currency,
    converted on the invoice date. Collection status: is_paid (invoice status Paid In Full).

    Incremental on the later of the line's and the header's load time (a payment changes only
    the header), plus deletes not yet carried and rows stored unresolved. -#}
{%- set unresolved -%}
    currency_code is null or exchange_rate_to_reporting is null or (erp_project_id is not null and project_key is null)
{%- endset %}

with lines as (
    select * from {{ ref('int_erp_invoice_lines') }}
    where invoice_line_id is not null
),

invoices as (
    select * from {{ ref('int_erp_invoices') }}
),

joined as (
    select
        lines.*,
        invoices.invoice_number,
        invoices.external_id as invoice_external_id,
        invoices.transaction_type,
        invoices.customer_id as erp_customer_id,
        invoices.project_id as erp_project_id,
        invoices.subsidiary_id as erp_subsidiary_id,
        invoices.currency_ref,
        invoices.invoice_date,
        invoices.due_date,
        invoices.invoice_status,
        invoices.total_amount as invoice_total_amount,
        invoices.memo as invoice_memo,
        invoices.source_updated_at as invoice_updated_at,
        case
            when invoices._loaded_at is null or lines._loaded_at >= invoices._loaded_at then lines._loaded_at
            else invoices._loaded_at
        end as line_loaded_at,
        lines.is_deleted or coalesce(invoices.is_deleted, false) as line_is_deleted
    from lines
    left join invoices on invoices.erp_platform = lines.erp_platform and invoices.invoice_id = lines.invoice_id
),

changed as (
    select *
    from joined
    {%- if is_incremental() %}
    where {{ incremental_changes('invoice_line_id', reprocess_when=unresolved,
                                 loaded_at='line_loaded_at', is_deleted='line_is_deleted') }}
    {%- endif %}
),

customer_identity as (
    select source_system as erp_platform, source_record_id as erp_customer_id, customer_key
    from {{ ref('int_customer_identity') }}
    where source_system in {{ ps_role_in('erp') }}
),

project_identity as (
    select source_system as erp_platform, source_record_id as erp_project_id, project_key
    from {{ ref('int_project_identity') }}
    where source_system in {{ ps_role_in('erp') }}
),

legal_entities as (
    select legal_entity_key, erp_subsidiary_id, functional_currency_code
    from {{ ref('dim_legal_entity') }}
),

classified as (
    select
        changed.*,
        currency_refs.currency_code,
        customer_identity.customer_key,
        project_identity.project_key,
        legal_entities.legal_entity_key,
        legal_entities.functional_currency_code,
        case
            when changed.invoice_external_id like 'psp:inv:%'
                then {{ regexp_first_match('changed.invoice_external_id', '[0-9]{4}-(?:0[1-9]|1[0-2])$') }}
        end as external_id_period,
        {{ regexp_first_match('changed.invoice_memo', '[0-9]{4}-(?:0[1-9]|1[0-2])') }} as memo_period,
        case
            when changed.line_key like 'psp:inl:%:%'
                then {{ dbt.split_part('changed.line_key', "':'", 3) }}
        end as line_source_type,
        case
            when changed.line_key like 'psp:inl:%:%'
                then {{ dbt.split_part('changed.line_key', "':'", 4) }}
        end as line_source_id
    from changed
    left join {{ ref('int_erp_currency_refs') }} as currency_refs
        on currency_refs.currency_ref = changed.currency_ref
    left join customer_identity
        on customer_identity.erp_platform = changed.erp_platform
       and customer_identity.erp_customer_id = changed.erp_customer_id
    left join project_identity
        on project_identity.erp_platform = changed.erp_platform
       and project_identity.erp_project_id = changed.erp_project_id
    left join legal_entities on legal_entities.erp_subsidiary_id = changed.erp_subsidiary_id
),

with_rates as (
    select
        classified.*,
        {{ ps_fact_rate_columns() }}
    from classified
    {{ ps_join_fact_rates('classified.currency_code', 'classified.functional_currency_code', 'classified.invoice_date') }}
)

select
    cast(invoice_line_id as {{ ps_type('string') }}) as invoice_line_id,
    cast(erp_platform as {{ ps_type('string') }}) as erp_platform,
    invoice_id,
    line_id,
    line_sequence_number,
    invoice_number,
    invoice_external_id,
    transaction_type,
    invoice_status,
    coalesce(lower(invoice_status) like '%paid in full%', false) as is_paid,
    invoice_date,
    due_date,
    cast(case
        when external_id_period is not null then cast({{ dbt.concat(['external_id_period', "'-01'"]) }} as date)
        when memo_period is not null then cast({{ dbt.concat(['memo_period', "'-01'"]) }} as date)
        when invoice_date is not null
            then {{ month_start(dbt.dateadd('month', -1, 'invoice_date')) }}
    end as date) as billing_period_start,
    cast(case
        when external_id_period is not null then 'external_id'
        when memo_period is not null then 'memo'
        when invoice_date is not null then 'invoice_date'
    end as {{ ps_type('string') }}) as billing_period_source,
    erp_customer_id,
    customer_key,
    erp_project_id,
    project_key,
    erp_subsidiary_id,
    legal_entity_key,
    currency_code,
    item,
    memo,
    cast({{ erp_line_kind('item') }} as {{ ps_type('string') }}) as line_kind,
    quantity,
    unit_rate,
    amount,
    invoice_total_amount,
    line_key,
    line_source_type,
    line_source_id,
    line_source_id is not null as is_pipeline_line,
    {{ ps_converted_amount_columns(functional=[('amount', 'amount_functional')],
                                   reporting=[('amount', 'amount_reporting')]) }},
    invoice_updated_at as source_updated_at,
    line_loaded_at as loaded_at,
    line_is_deleted as is_deleted
from with_rates
