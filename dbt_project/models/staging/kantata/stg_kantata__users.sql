{#- Grain: one row per Kantata user (latest version); deleted users kept, flagged. Kantata
    documents no created or updated time on a user, so there is none here. -#}
{%- set src = source('kantata', 'users') -%}
{%- set cols = ps_source_columns(src) -%}

with latest as (
    select * from {{ ps_latest_version(src) }} as latest_rows
),

renamed as (
    select
        {{ ps_column(cols, 'id', 'user_id', 'string') }},
        {{ ps_column(cols, 'full_name', 'full_name', 'string') }},
        {{ ps_column(cols, 'email_address', 'email', 'string') }},
        {{ ps_column(cols, 'headline', 'headline', 'string') }},
        coalesce({{ ps_column_expr(cols, 'disabled', 'boolean') }}, false) as is_disabled,
        {{ ps_lineage_columns(cols) }}
        {{ ps_pass_through_columns(cols, 'kantata_users_pass_through_columns') }}
    from latest
)

select
    *,
    {{ normalize_email('email') }} as email_normalized
from renamed
