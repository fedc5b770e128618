{#- Grain: one row per Certinia expense (pse__Expense__c, latest version); deleted kept, flagged.
    The columns of stg_kantata__expenses: category is the expense type picklist; approval from
    the Approved flag and the status (macros/statuses.sql); no approval time is documented. -#}
{%- set src = source('certinia', 'expenses') -%}
{%- set cols = ps_source_columns(src) -%}

with latest as (
    select * from {{ ps_latest_version(src) }} as latest_rows
)

select
    {{ ps_column(cols, 'id', 'expense_id', 'string') }},
    {{ ps_column(cols, 'pse__project__c', 'project_id', 'string') }},
    {{ ps_column(cols, 'pse__resource__c', 'user_id', 'string') }},
    {{ ps_column(cols, 'pse__expense_date__c', 'expense_date', 'date') }},
    {{ ps_column(cols, 'pse__type__c', 'category', 'string') }},
    {{ ps_decimal_column_expr(cols, 'pse__amount__c') }} as amount,
    {{ ps_column(cols, 'currencyisocode', 'currency_code', 'string') }},
    coalesce({{ ps_column_expr(cols, 'pse__billable__c', 'boolean') }}, false) as is_billable,
    {{ certinia_approval_status(ps_column_expr(cols, 'pse__status__c', 'string'),
                                ps_column_expr(cols, 'pse__approved__c', 'boolean')) }} as approval_status,
    cast(null as {{ ps_type('timestamp') }}) as approved_at,
    {{ ps_column(cols, 'pse__description__c', 'notes', 'string') }},
    {{ ps_column(cols, 'createddate', 'created_at', 'timestamp') }},
    {{ ps_lineage_columns(cols) }}
    {{ ps_pass_through_columns(cols, 'certinia_expenses_pass_through_columns') }}
from latest
