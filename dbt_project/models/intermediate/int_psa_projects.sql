{#- Grain: one row per PSA project of every PSA the estate declares: Kantata workspaces,
    Certinia projects (pse__Proj__c).
    The role's records whatever the estate (macros/estate.sql: ps_estate_union); the columns
    are this model's documented ones. -#}
{{ ps_estate_union('psa_platform', [('kantata', 'stg_kantata__projects'), ('certinia', 'stg_certinia__projects')]) }}
