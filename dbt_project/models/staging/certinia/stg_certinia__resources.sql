{#- Grain: one row per Certinia resource (a Contact flagged pse__Is_Resource__c, latest
    version); deleted kept, flagged. The columns of stg_kantata__users (user_id: the Contact
    Id timecards and expenses name; headline: the title; is_disabled: no longer an active
    resource), plus the resource's role, default cost rate, region and practice. -#}
{%- set src = source('certinia', 'resources') -%}
{%- set cols = ps_source_columns(src) -%}

with latest as (
    select * from {{ ps_latest_version(src) }} as latest_rows
),

renamed as (
    select
        {{ ps_column(cols, 'id', 'user_id', 'string') }},
        trim({{ dbt.concat(["coalesce(" ~ ps_column_expr(cols, 'firstname', 'string') ~ ", '')", "' '",
                            "coalesce(" ~ ps_column_expr(cols, 'lastname', 'string') ~ ", '')"]) }}) as full_name,
        {{ ps_column(cols, 'email', 'email', 'string') }},
        {{ ps_column(cols, 'title', 'headline', 'string') }},
        not coalesce({{ ps_column_expr(cols, 'pse__is_resource_active__c', 'boolean') }}, true) as is_disabled,
        {{ ps_column(cols, 'pse__resource_role__c', 'resource_role', 'string') }},
        {{ ps_decimal_column_expr(cols, 'pse__default_cost_rate__c') }} as default_cost_rate,
        {{ ps_column(cols, 'currencyisocode', 'currency_code', 'string') }},
        {{ ps_column(cols, 'pse__region__c', 'region_id', 'string') }},
        {{ ps_column(cols, 'pse__practice__c', 'practice_id', 'string') }},
        {{ ps_column(cols, 'pse__start_date__c', 'start_date', 'date') }},
        {{ ps_column(cols, 'pse__last_date__c', 'last_date', 'date') }},
        {{ ps_column(cols, 'createddate', 'created_at', 'timestamp') }},
        {{ ps_lineage_columns(cols) }}
        {{ ps_pass_through_columns(cols, 'certinia_resources_pass_through_columns') }}
    from latest
)

select
    *,
    {{ normalize_email('email') }} as email_normalized
from renamed
