{#- Grain: one row per PSA time entry of every PSA the estate declares: Kantata time entries,
    and one per day with hours of each Certinia timecard (pse__Timecard_Header__c).
    The role's records whatever the estate (macros/estate.sql: ps_estate_union); the columns
    are this model's documented ones. -#}
{{ ps_estate_union('psa_platform', [('kantata', 'stg_kantata__time_entries'), ('certinia', 'stg_certinia__timecards')]) }}
