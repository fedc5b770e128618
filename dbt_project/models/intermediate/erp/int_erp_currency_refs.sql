{#- Grain: one row per currency reference ERP records use (currency_ref), resolved to its ISO
    code. NetSuite rows point at a currency by internal id; Dynamics 365 rows by ISO code (its
    currencies are keyed by it); a reference that is already an ISO code (as some NetSuite
    exports and the CSV import send) resolves to itself, so both spellings work wherever ERP
    currencies are joined, whichever ERPs the estate runs. -#}
with currencies as (
    select currency_id, currency_code
    from {{ ref('int_erp_currencies') }}
    where currency_code is not null
      and currency_id is not null
),

by_currency_id as (
    select
        currency_id as currency_ref,
        min(currency_code) as currency_code,
        case when currency_id = min(currency_code) then 'iso_code' else 'internal_id' end as ref_kind
    from currencies
    group by currency_id
),

by_iso_code as (
    select distinct
        currency_code as currency_ref,
        currency_code,
        'iso_code' as ref_kind
    from currencies
    where currencies.currency_code not in (select listed.currency_id from currencies as listed)
)

select * from by_currency_id
union all
select * from by_iso_code
