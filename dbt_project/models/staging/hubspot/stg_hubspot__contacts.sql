{#- Grain: one row per HubSpot contact (latest version); archived contacts kept, flagged.
    The columns of stg_salesforce__contacts; account_id is the contact's primary company. -#}
{%- set src = source('hubspot', 'contacts') -%}
{%- set cols = ps_source_columns(src) -%}

with latest as (
    select * from {{ ps_latest_version(src) }} as latest_rows
),

renamed as (
    select
        {{ ps_column(cols, 'id', 'contact_id', 'string') }},
        {{ ps_column(cols, 'associatedcompanyid', 'account_id', 'string') }},
        {{ ps_column(cols, 'firstname', 'first_name', 'string') }},
        {{ ps_column(cols, 'lastname', 'last_name', 'string') }},
        {{ ps_column(cols, 'email', 'email', 'string') }},
        {{ ps_column(cols, 'jobtitle', 'title', 'string') }},
        {{ ps_column(cols, 'createdate', 'created_at', 'timestamp') }},
        {{ ps_lineage_columns(cols) }}
        {{ ps_pass_through_columns(cols, 'hubspot_contacts_pass_through_columns') }}
    from latest
)

select
    *,
    trim({{ dbt.concat(["coalesce(first_name, '')", "' '", "coalesce(last_name, '')"]) }}) as full_name,
    {{ normalize_email('email') }} as email_normalized
from renamed
