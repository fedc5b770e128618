{#- Grain: one row per outbound transaction of the write-back ledger (outbox_key).

    The ledger is the write-back's own table (schema ops), created by the pipeline on first use;
    a warehouse without it reads as an empty ledger (ps_optional_relation). -#}
{%- set src = source('ops', 'outbox') -%}
{%- set ledger = ps_optional_relation(src) -%}
{%- set cols = ps_source_columns(src) if ledger is not none else [] -%}

select
    {{ ps_column(cols, 'outbox_key', 'outbox_key', 'string') }},
    {{ ps_column(cols, 'flow', 'flow', 'string') }},
    {{ ps_column(cols, 'target_system', 'target_system', 'string') }},
    {{ ps_column(cols, 'record_type', 'record_type', 'string') }},
    {{ ps_column(cols, 'external_id', 'external_id', 'string') }},
    {{ ps_column(cols, 'state', 'state', 'string') }},
    {{ ps_column(cols, 'version', 'version', 'integer') }},
    {{ ps_column(cols, 'payload_hash', 'payload_hash', 'string') }},
    {{ ps_column(cols, 'attempts', 'attempts', 'integer') }},
    {{ ps_column(cols, 'last_error', 'last_error', 'string') }},
    {{ ps_column(cols, 'target_id', 'target_id', 'string') }},
    {{ ps_column(cols, 'subsidiary_id', 'subsidiary_id', 'string') }},
    {{ ps_column(cols, 'currency', 'currency_code', 'string') }},
    {{ ps_column(cols, 'billing_period', 'billing_period', 'string') }},
    {{ ps_column(cols, 'amount', 'amount', 'money') }},
    {{ ps_column(cols, 'line_count', 'line_count', 'integer') }},
    {{ ps_column(cols, 'first_seen_at', 'first_seen_at', 'timestamp') }},
    {{ ps_column(cols, 'updated_at', 'updated_at', 'timestamp') }},
    {{ ps_column(cols, 'posted_at', 'posted_at', 'timestamp') }},
    {{ ps_column(cols, 'posted_version', 'posted_version', 'integer') }},
    {{ ps_column(cols, 'posted_payload', 'posted_payload', 'string') }},
    {{ ps_column(cols, 'posted_run_id', 'posted_run_id', 'string') }},
    {{ ps_column(cols, 'last_run_id', 'last_run_id', 'string') }}
{{ ps_from_optional(src, ledger) }}
