{#- Grain: one row per currency reference NetSuite records use (currency_ref).
    NetSuite rows point at a currency by internal id; a reference that is already an ISO
    code (as some exports and the CSV import send) resolves to itself, so both spellings
    work wherever ERP currencies are joined. -#}
with currencies as (
    select currency_id, currency_code
    from {{ ref('stg_netsuite__currencies') }}
    where currency_code is not null
      and currency_id is not null
),

by_internal_id as (
    select
        currency_id as currency_ref,
        currency_code,
        'internal_id' as ref_kind
    from currencies
),

by_iso_code as (
    select distinct
        currency_code as currency_ref,
        currency_code,
        'iso_code' as ref_kind
    from currencies
    where currencies.currency_code not in (select listed.currency_id from currencies as listed)
)

select * from by_internal_id
union all
select * from by_iso_code
