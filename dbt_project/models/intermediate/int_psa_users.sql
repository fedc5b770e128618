{#- Grain: one row per PSA person of every PSA the estate declares: Kantata users, Certinia
    resources (Contacts flagged as resources).
    The role's records whatever the estate (macros/estate.sql: ps_estate_union); the columns
    are this model's documented ones. -#}
{{ ps_estate_union('psa_platform', [('kantata', 'stg_kantata__users'), ('certinia', 'stg_certinia__resources')]) }}
