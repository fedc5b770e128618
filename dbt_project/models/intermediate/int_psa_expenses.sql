{#- Grain: one row per PSA expense of every PSA the estate declares: Kantata expenses, Certinia
    expenses (pse__Expense__c).
    The role's records whatever the estate (macros/estate.sql: ps_estate_union); the columns
    are this model's documented ones. -#}
{{ ps_estate_union('psa_platform', [('kantata', 'stg_kantata__expenses'), ('certinia', 'stg_certinia__expenses')]) }}
