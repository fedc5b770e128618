{#- Grain: one row per PSA milestone of every PSA the estate declares: Kantata milestones,
    Certinia milestones (pse__Milestone__c).
    The role's records whatever the estate (macros/estate.sql: ps_estate_union); the columns
    are this model's documented ones. -#}
{{ ps_estate_union('psa_platform', [('kantata', 'stg_kantata__milestones'), ('certinia', 'stg_certinia__milestones')]) }}
