{#- Grain: one row per source customer record, i.e. every CRM account (Salesforce Accounts,
    HubSpot companies: int_crm_accounts, source_system the CRM) and every ERP customer (NetSuite,
    Dynamics 365: int_erp_customers, source_system the ERP),
    with the customer_key of the real customer it belongs to.

    Every CRM account is a customer of its own (CRM is the customer master). An ERP customer
    joins the account it matches, first rule that applies (DECISIONLOG.md, "Identity matching"):
      1. external_id        ERP CRM link (NetSuite externalid, Dynamics 365
                            PsCrmAccountId) = CRM account id            confidence 1.00
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
        crm_platform,
        erp_customer_id,
        {{ normalize_name('account_name') }} as name_key
    from {{ ref('int_crm_accounts') }}
    where account_id is not null
),

customers as (
    select
        customer_id,
        erp_platform,
        crm_account_id,
        {{ normalize_name('customer_name') }} as name_key
    from {{ ref('int_erp_customers') }}
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
    inner join customers as c on c.customer_id = a.erp_customer_id

    union all

    select a.account_id, c.customer_id, 'name', 0.70, 3
    from unlinked_account_names as a
    inner join unlinked_customer_names as c on c.name_key = a.name_key
),

primary_pairs as (
    select * from {{ mutual_best_pairs('candidate_pairs', 'account_id', 'customer_id') }} as pairs
),

duplicate_customers as (
    select * from {{ duplicate_matches('candidate_pairs', 'primary_pairs', 'account_id', 'customer_id') }} as dups
),

identity_records as (
    {{ identity_bridge(
        'customer_key',
        left={'system_column': 'crm_platform', 'relation': 'accounts', 'id': 'account_id',
              'column': 'crm_account_id', 'unmatched': 'crm_only'},
        right={'system_column': 'erp_platform', 'relation': 'customers', 'id': 'customer_id',
               'column': 'erp_customer_id', 'unmatched': 'erp_only'},
        pairs='primary_pairs',
        duplicates='duplicate_customers',
    ) }}
)

select * from identity_records
