{#- Grain: one row per ERP record (erp_platform, id) of every ERP the estate declares:
    stg_netsuite__projects, stg_d365__projects. Projects (NetSuite jobs, Dynamics 365 projects) in one set of columns. Each
    ERP's ids are its own (NetSuite internal ids, Dynamics 365 keys) and the marts join on
    them, so the ERPs' ids must not collide (an estate runs one ERP in practice). -#}
{{ ps_estate_union('erp_platform', [
    ('netsuite', 'stg_netsuite__projects'),
    ('d365', 'stg_d365__projects'),
]) }}
