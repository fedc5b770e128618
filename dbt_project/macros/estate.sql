{#- The estate (ps_pipelines/estate.py): the platforms the firm runs. The var `estate` wins,
    else PS_ESTATE, else the default estate; dbt_project.yml repeats this for the enabled
    configs of the platforms built only when declared (HubSpot, Certinia, the ERPs...). -#}
{% macro ps_estate() -%}
  {{ return((var('estate', env_var('PS_ESTATE', 'salesforce,kantata,workday,netsuite')) | lower
             | replace(' ', '')).split(',')) }}
{%- endmacro %}

{#- True when the estate declares `platform`: a union in the intermediate layer reads a
    platform's staging only then (its models are disabled otherwise). -#}
{% macro ps_declares(platform) -%}
  {{ return(platform in ps_estate()) }}
{%- endmacro %}

{#- The platforms that can fill `role` (crm, psa, erp), as ps_pipelines/estate.py has them. -#}
{% macro ps_role_platforms(role) -%}
  {{ return({'crm': ['salesforce', 'hubspot'], 'psa': ['kantata', 'certinia'], 'erp': ['netsuite', 'd365']}[role]) }}
{%- endmacro %}

{#- The role's platforms as a SQL list, for `source_system in {{ ps_role_in('crm') }}`. -#}
{% macro ps_role_in(role) -%}
  ({% for platform in ps_role_platforms(role) %}'{{ platform }}'{{ ', ' if not loop.last }}{% endfor %})
{%- endmacro %}

{#- One role's records from every platform of the estate that fills it: `members` is a list
    of (platform, staging model); the declared ones are unioned, each row labelled with its
    platform in `platform_column`. The columns are the union model's documented columns (its
    YAML), so every member must carry them (staging of a second platform has the first's
    columns, extra ones after them). With no declared member (e.g. Salesforce contracts in a
    HubSpot-only estate) the result is empty, typed by the columns' data_type. -#}
{% macro ps_estate_union(platform_column, members) -%}
  {%- set declared = [] -%}
  {%- for platform, relation in members -%}
    {%- if ps_declares(platform) %}{% do declared.append((platform, relation)) %}{% endif -%}
  {%- endfor -%}
  {%- set columns = model.columns.values() | list -%}
  {%- set shared = columns | map(attribute='name') | reject('equalto', platform_column) | list -%}
  {%- if declared %}
    {%- for platform, relation in declared %}
select
    cast('{{ platform }}' as {{ ps_type('string') }}) as {{ platform_column }},
    {{ shared | join(',\n    ') if shared else '*' }}
from {{ ref(relation) }}
      {%- if not loop.last %}
union all
      {%- endif %}
    {%- endfor %}
  {%- else %}
select
    {%- for column in columns %}
    cast(null as {{ column.data_type }}) as {{ column.name }}{{ ',' if not loop.last }}
    {%- endfor %}
where false
  {%- endif %}
{%- endmacro %}

{#- The role's platforms the estate declares, in declaration order (the first PSA is where a
    won deal's new project is created). -#}
{% macro ps_role_declared(role) -%}
  {{ return(ps_estate() | select('in', ps_role_platforms(role)) | list) }}
{%- endmacro %}

{#- The CRMs that keep contracts as records of their own (a HubSpot deal carries its terms
    itself: HubSpot has no contract object), as a SQL list. -#}
{% macro ps_crms_with_contracts() -%}
  ('salesforce')
{%- endmacro %}

{#- The rate card a Certinia rate (pse__Rate_Card__c) belongs to in the canonical model: Certinia
    keeps one record per role, scoped to an account, practice or region (or none: org-wide) and a
    currency, and prices from those in effect on the day. The cards of one scope and currency are
    one rate card here, e.g. certinia:org:USD, certinia:region:<id>:EUR. -#}
{% macro certinia_rate_card_id(region_id, practice_id, account_id, currency_code) -%}
    case
        when {{ account_id }} is not null then 'certinia:account:' || {{ account_id }} || ':' || {{ currency_code }}
        when {{ practice_id }} is not null then 'certinia:practice:' || {{ practice_id }} || ':' || {{ currency_code }}
        when {{ region_id }} is not null then 'certinia:region:' || {{ region_id }} || ':' || {{ currency_code }}
        else 'certinia:org:' || {{ currency_code }}
    end
{%- endmacro %}

{#- A platform's staging model, or when the estate does not declare the platform, no rows of
    the same columns: `columns` is a list of (column, ps_type), read from the model when
    declared and typed nulls otherwise. A model that reads a declared-only platform (HubSpot's
    recurring line items) then stays one piece of SQL on every estate: built and linted the
    same, empty where the platform is absent (a ref in the false branch is never parsed, so
    no dependency on the disabled staging model). -#}
{% macro ps_declared_or_empty(platform, relation, columns) -%}
  {%- if ps_declares(platform) %}
    select
        {%- for name, type in columns %}
        {{ name }}{{ ',' if not loop.last }}
        {%- endfor %}
    from {{ ref(relation) }}
  {%- else %}
    select
        {%- for name, type in columns %}
        cast(null as {{ ps_type(type) }}) as {{ name }}{{ ',' if not loop.last }}
        {%- endfor %}
    where false
  {%- endif %}
{%- endmacro %}
