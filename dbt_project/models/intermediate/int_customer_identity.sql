{#- Grain: one row per source customer record, i.e. every Salesforce Account and every NetSuite
    customer, with the customer_key of the real customer it belongs to.

    Every CRM account is a customer of its own (CRM is the customer master). An ERP customer
    joins the account it matches, first rule that applies (DECISIONLOG.md, "Identity matching"):
      1. external_id        NetSuite externalid = Salesforce Account Id       confidence 1.00
      2. crm_erp_reference  Account.ERP_Customer_Id__c = NetSuite id           confidence 0.95
      3. name               same normalised name, unique on both sides, and
                            neither side carries a link of rules 1-2           confidence 0.70
    An account and a customer pair up when each is the other's best candidate (primary
    records; a second round pairs what the first left over). A further ERP customer whose
    best candidate account is already paired is an ERP duplicate: it joins that customer as
    a non-primary record. Unmatched ERP customers are
    customers of their own (erp_only). -#}
with accounts as (
    select
        account_id,
        erp_customer_id,
        {{ normalize_name('account_name') }} as name_key
    from {{ ref('stg_salesforce__accounts') }}
    where account_id is not null
),

customers as (
    select
        customer_id,
        crm_account_id,
        {{ normalize_name('customer_name') }} as name_key
    from {{ ref('stg_netsuite__customers') }}
    where customer_id is not null
),

-- Name matching only between records that carry no id link, and only on unambiguous names.
unlinked_account_names as (
    select name_key, min(account_id) as account_id
    from accounts
    where erp_customer_id is null and name_key is not null
    group by name_key
    having count(*) = 1
),

unlinked_customer_names as (
    select name_key, min(customer_id) as customer_id
    from customers
    where crm_account_id is null and name_key is not null
    group by name_key
    having count(*) = 1
),

candidate_pairs as (
    select a.account_id, c.customer_id, 'external_id' as match_method, 1.00 as match_confidence, 1 as match_rank
    from accounts as a
    inner join customers as c on c.crm_account_id = a.account_id

    union all

    select a.account_id, c.customer_id, 'crm_erp_reference', 0.95, 2
    from accounts as a
    inner join customers as c on a.erp_customer_id = c.customer_id

    union all

    select a.account_id, c.customer_id, 'name', 0.70, 3
    from unlinked_account_names as a
    inner join unlinked_customer_names as c on a.name_key = c.name_key
),

primary_pairs as (
    select * from {{ mutual_best_pairs('candidate_pairs', 'account_id', 'customer_id') }} as pairs
),

duplicate_customers as (
    select * from {{ duplicate_matches('candidate_pairs', 'primary_pairs', 'account_id', 'customer_id') }} as dups
),

crm_records as (
    select
        {{ surrogate_key(["'salesforce'", 'a.account_id']) }} as customer_key,
        'salesforce' as source_system,
        a.account_id as source_record_id,
        a.account_id as crm_account_id,
        p.customer_id as erp_customer_id,
        coalesce(p.match_method, 'crm_only') as match_method,
        cast(p.match_confidence as {{ ps_type('number') }}) as match_confidence,
        true as is_primary_record
    from accounts as a
    left join primary_pairs as p on p.account_id = a.account_id
),

erp_records as (
    select
        case
            when matched.account_id is not null
                then {{ surrogate_key(["'salesforce'", 'matched.account_id']) }}
            else {{ surrogate_key(["'netsuite'", 'c.customer_id']) }}
        end as customer_key,
        'netsuite' as source_system,
        c.customer_id as source_record_id,
        matched.account_id as crm_account_id,
        c.customer_id as erp_customer_id,
        coalesce(matched.match_method, 'erp_only') as match_method,
        cast(matched.match_confidence as {{ ps_type('number') }}) as match_confidence,
        coalesce(matched.is_primary_record, true) as is_primary_record
    from customers as c
    left join (
        select account_id, customer_id, match_method, match_confidence, true as is_primary_record
        from primary_pairs
        union all
        select account_id, customer_id, match_method, match_confidence, false
        from duplicate_customers
    ) as matched on matched.customer_id = c.customer_id
)

select * from crm_records
union all
select * from erp_records
