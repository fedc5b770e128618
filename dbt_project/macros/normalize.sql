{#- Matching keys for identity resolution (see DECISIONLOG.md, "Identity matching").
    Only lower/trim/regexp_replace: the same on DuckDB and PostgreSQL. -#}

{#- E-mail: case and surrounding blanks never distinguish two mailboxes. -#}
{% macro normalize_email(expr) -%}
  nullif(lower(trim({{ expr }})), '')
{%- endmacro %}

{#- Company or person name: lower case, a trailing legal form dropped ("Acme Corp." and
    "ACME" match), then everything but letters and digits removed. -#}
{% macro normalize_name(expr) -%}
  nullif(
    regexp_replace(
      regexp_replace(
        lower(trim({{ expr }})),
        '[ ,]+(inc|incorporated|llc|ltd|limited|plc|corp|corporation|co|company|gmbh|ag|sa|sas|bv|nv|pty|srl|spa)\.?$',
        '', 'g'),
      '[^a-z0-9]+', '', 'g'),
    '')
{%- endmacro %}
