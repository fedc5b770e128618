{#- What the PSA facts (time entries, expenses, milestones) resolve from their source row,
    written once: the project context (int_fact_project_context) of the row's project and the
    worker of its PSA user.

    ps_join_project_context: a left join of int_fact_project_context as `alias` on the
    project record `project_id` of the system `source_system` (a SQL expression: the row's
    psa_platform column, as the PSA unions carry it).
    ps_join_psa_worker: a left join of int_worker_identity as `alias` on the PSA user
    `user_id` of the PSA `source_system` (its worker_key).
    ps_project_context_columns: the project columns a fact carries, read from `alias`.
    ps_fact_project_columns: the same columns in a fact's final select, with the source
    project id as psa_project_id, in the order of the contracts.
    ps_approval_columns: a PSA record's approval (time entries, expenses).
    ps_record_state_columns: the change, delete and quarantine columns that close a fact's
    select; loaded_at and deleted_at where the fact carries them. -#}
{% macro ps_join_project_context(alias, project_id, source_system) -%}
    left join {{ ref('int_fact_project_context') }} as {{ alias }}
        on {{ alias }}.source_system = {{ source_system }}
       and {{ alias }}.source_record_id = {{ project_id }}
{%- endmacro %}

{% macro ps_join_psa_worker(alias, user_id, source_system) -%}
    left join {{ ref('int_worker_identity') }} as {{ alias }}
        on {{ alias }}.source_system = {{ source_system }}
       and {{ alias }}.source_record_id = {{ user_id }}
{%- endmacro %}

{% macro ps_project_context_columns(alias='projects') -%}
    {%- for column in ['project_key', 'customer_key', 'contract_key', 'legal_entity_key', 'billing_model'] %}
        {{ alias }}.{{ column }}{{ ',' if not loop.last }}
    {%- endfor %}
{%- endmacro %}

{% macro ps_fact_project_columns(project_id='project_id') -%}
    project_key,
    cast({{ project_id }} as {{ ps_type('string') }}) as psa_project_id,
    customer_key,
    contract_key,
    legal_entity_key,
    billing_model
{%- endmacro %}

{% macro ps_approval_columns() -%}
    is_billable,
    approval_status,
    coalesce(approval_status = 'approved', false) as is_approved,
    approved_at,
    {{ to_firm_date('approved_at') }} as approval_date
{%- endmacro %}

{% macro ps_record_state_columns(loaded_at='_loaded_at', with_deleted_at=true) -%}
    source_updated_at,
    {%- if loaded_at %}
    {{ loaded_at }} as loaded_at,
    {%- endif %}
    is_deleted,
    {%- if with_deleted_at %}
    deleted_at,
    {%- endif %}
    is_quarantined,
    quarantined_at,
    quarantine_rule
{%- endmacro %}
