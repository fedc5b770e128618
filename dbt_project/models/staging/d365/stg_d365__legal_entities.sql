{#- Grain: one row per Dynamics 365 legal entity (company); deleted kept, flagged. The columns are
    stg_netsuite__subsidiaries' (int_erp_legal_entities unions both): subsidiary_id is the legal
    entity id as company-specific records carry it in dataAreaId (lower-case: F&O compares company
    ids case-insensitively and answers LegalEntityId upper-case), currency_ref its ledger's
    accounting currency, an ISO code. F&O legal entities have no inactive flag. -#}
{%- set src = source('d365', 'legal_entities') -%}
{%- set cols = ps_source_columns(src) -%}
{%- set ledger_src = source('d365', 'ledgers') -%}
{%- set ledger_cols = ps_source_columns(ledger_src) -%}

with latest as (
    select * from {{ ps_latest_version(src) }} as latest_rows
),

ledgers as (
    select
        lower({{ ps_column_expr(ledger_cols, 'legalentityid', 'string') }}) as legal_entity_id,
        upper({{ ps_column_expr(ledger_cols, 'accountingcurrency', 'string') }}) as accounting_currency
    from {{ ps_latest_version(ledger_src) }} as ledger_rows
    where not coalesce(_is_deleted, false)
)

select
    lower({{ ps_column_expr(cols, 'legalentityid', 'string') }}) as subsidiary_id,
    {{ ps_column(cols, 'name', 'subsidiary_name', 'string') }},
    {{ ps_column(cols, 'addresscountryregionisocode', 'country', 'string') }},
    ledgers.accounting_currency as currency_ref,
    false as is_inactive,
    {{ ps_lineage_columns(cols) }}
    {{ ps_pass_through_columns(cols, 'd365_legal_entities_pass_through_columns') }}
from latest
left join ledgers on ledgers.legal_entity_id = lower(latest.legalentityid)
