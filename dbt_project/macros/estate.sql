{#- The estate (ps_pipelines/estate.py): the platforms the firm runs. The var `estate` wins,
    else PS_ESTATE, else the default estate; dbt_project.yml repeats this for the enabled
    configs of the declared-only platforms (HubSpot, Certinia). -#}
{% macro ps_estate() -%}
  {{ return((var('estate', env_var('PS_ESTATE', 'salesforce,kantata,workday,netsuite')) | lower
             | replace(' ', '')).split(',')) }}
{%- endmacro %}

{#- True when the estate declares `platform`: a union in the intermediate layer reads a
    platform's staging only then (its models are disabled otherwise). -#}
{% macro ps_declares(platform) -%}
  {{ return(platform in ps_estate()) }}
{%- endmacro %}
