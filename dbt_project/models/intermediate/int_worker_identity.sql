{#- Grain: one row per source person record, i.e. every Workday worker and every PSA user
    (Kantata users, Certinia resources: int_psa_users, source_system the PSA),
    with the worker_key of the person it belongs to.

    Every Workday worker is a person of its own (HR is the people master). A Kantata user joins
    the worker it matches, first rule that applies (DECISIONLOG.md):
      1. email  lower(trim(email_address)) = lower(trim(primaryWorkEmail))        confidence 1.00
      2. name   same normalised full name, unique on both sides, and neither side
                matched by e-mail                                                  confidence 0.80
    Pairs are mutual best candidates; a further user matching an already paired worker is a
    duplicate PSA login of that person (non-primary record). Unmatched users are kept as people
    of their own (psa_only) so their time is never dropped; unmatched workers are hr_only. -#}
with workers as (
    select worker_id, email_normalized, {{ normalize_name('worker_name') }} as name_key
    from {{ ref('stg_workday__workers') }}
    where worker_id is not null
),

users as (
    select user_id, psa_platform, email_normalized, {{ normalize_name('full_name') }} as name_key
    from {{ ref('int_psa_users') }}
    where user_id is not null
),

email_pairs as (
    select w.worker_id, u.user_id, 'email' as match_method, 1.00 as match_confidence, 1 as match_rank
    from workers as w
    inner join users as u on u.email_normalized = w.email_normalized
),

unmatched_worker_names as (
    select name_key, min(worker_id) as worker_id
    from workers
    where name_key is not null
      and workers.worker_id not in (select email_pairs.worker_id from email_pairs)
    group by name_key
    having count(*) = 1
),

unmatched_user_names as (
    select name_key, min(user_id) as user_id
    from users
    where name_key is not null
      and users.user_id not in (select email_pairs.user_id from email_pairs)
    group by name_key
    having count(*) = 1
),

candidate_pairs as (
    select * from email_pairs

    union all

    select w.worker_id, u.user_id, 'name', 0.80, 2
    from unmatched_worker_names as w
    inner join unmatched_user_names as u on u.name_key = w.name_key
),

primary_pairs as (
    select * from {{ mutual_best_pairs('candidate_pairs', 'worker_id', 'user_id') }} as pairs
),

duplicate_users as (
    select * from {{ duplicate_matches('candidate_pairs', 'primary_pairs', 'worker_id', 'user_id') }} as dups
),

identity_records as (
    {{ identity_bridge(
        'worker_key',
        left={'system': 'workday', 'relation': 'workers', 'id': 'worker_id',
              'column': 'workday_worker_id', 'unmatched': 'hr_only'},
        right={'system_column': 'psa_platform', 'relation': 'users', 'id': 'user_id',
               'column': 'kantata_user_id', 'unmatched': 'psa_only'},
        pairs='primary_pairs',
        duplicates='duplicate_users',
    ) }}
)

select * from identity_records
