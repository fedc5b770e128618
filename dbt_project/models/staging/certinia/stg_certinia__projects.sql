{#- Grain: one row per Certinia project (pse__Proj__c, latest version); deleted kept, flagged.
    The columns of stg_kantata__projects, so int_project_identity can union the two PSAs:
    budget_amount is the project's bookings; status_key is Kantata's alone (null here);
    is_archived: the project is no longer active. rate_card_id: Certinia has no card per project:
    it prices a role from the rate cards in effect on the day, the narrowest that applies
    (account, practice, region, else the org-wide one). The org-wide cards of the project's
    currency are its rate card here (int_rate_card_rates gives them that id: certinia_rate_card_id);
    narrower cards are staged but not yet matched.
    opportunity_id: the CRM deal the project delivers, the column Kantata's workspaces carry
    it in, so identity and billing link a project to its deal whatever the PSA. It is the
    firm's External ID field CRM_Deal_Id__c when set (the deal in whichever CRM sold it: a
    HubSpot deal has no Salesforce record pse__Opportunity__c could name), else
    pse__Opportunity__c (a project made in the org before the firm's field held the deal). -#}
{%- set src = source('certinia', 'projects') -%}
{%- set cols = ps_source_columns(src) -%}

with latest as (
    select * from {{ ps_latest_version(src) }} as latest_rows
),

renamed as (
    select
        {{ ps_column(cols, 'id', 'project_id', 'string') }},
        {{ ps_column(cols, 'name', 'project_name', 'string') }},
        {{ ps_column(cols, 'currencyisocode', 'currency_code', 'string') }},
        {{ ps_decimal_column_expr(cols, 'pse__bookings__c') }} as budget_amount,
        {{ ps_column(cols, 'pse__start_date__c', 'start_date', 'date') }},
        {{ ps_column(cols, 'pse__end_date__c', 'due_date', 'date') }},
        cast(null as {{ ps_type('integer') }}) as status_key,
        {{ ps_column(cols, 'pse__stage__c', 'status_message', 'string') }},
        not coalesce({{ ps_column_expr(cols, 'pse__is_active__c', 'boolean') }}, true) as is_archived,
        {{ certinia_rate_card_id("null", "null", "null", ps_column_expr(cols, 'currencyisocode', 'string')) }}
            as rate_card_id,
        coalesce(
            {{ ps_column_expr(cols, 'crm_deal_id__c', 'string') }},
            {{ ps_column_expr(cols, 'pse__opportunity__c', 'string') }}
        ) as opportunity_id,
        {{ ps_column(cols, 'createddate', 'created_at', 'timestamp') }},
        {{ ps_column(cols, 'pse__account__c', 'account_id', 'string') }},
        {{ ps_column(cols, 'pse__billing_type__c', 'billing_type', 'string') }},
        {{ ps_column(cols, 'pse__region__c', 'region_id', 'string') }},
        {{ ps_column(cols, 'pse__practice__c', 'practice_id', 'string') }},
        {{ ps_column(cols, 'pse__project_manager__c', 'project_manager_id', 'string') }},
        coalesce({{ ps_column_expr(cols, 'pse__is_billable__c', 'boolean') }}, false) as is_billable,
        {{ ps_lineage_columns(cols) }}
        {{ ps_pass_through_columns(cols, 'certinia_projects_pass_through_columns') }}
    from latest
)

select
    *,
    {{ certinia_project_status('status_message') }} as project_status
from renamed
