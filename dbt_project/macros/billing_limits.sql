{#- Billing holds (DECISIONLOG.md, "Quarantine holds" and "Billing limits"): the checks the
    outbound invoice lines add to their validation_errors, with the text that names the record
    and the rule (validation_detail, one "rule: detail" per line of text).

    The limits are dbt vars, one name each, stated in the reporting currency (var
    reporting_currency) where they are money:
      billing_max_hourly_rate          a time line's rate
      billing_max_hours_per_entry      a time line's hours
      billing_max_hours_per_worker_day the approved hours of the line's person on its work date,
                                       every project together
      billing_max_line_amount          a line's amount
      billing_max_invoice_amount       an invoice's total
      billing_max_rate_card_multiple   a time line's rate over its rate-card rate (the anomaly rule)
-#}

{#- A number as the text of a money amount (2 decimals), for validation_detail. -#}
{% macro ps_money_text(expr) -%}
  cast(cast({{ expr }} as {{ ps_type('money') }}) as {{ dbt.type_string() }})
{%- endmacro %}

{#- The billing limits as (rule, condition, detail) over the columns of erp_billing_transactions'
    validated lines: source_type, source_id, billing_unit_rate, billing_amount, quantity,
    billing_currency_code, unit_rate_reporting, line_amount_reporting, invoice_amount_reporting,
    invoice_billing_amount, worker_day_hours, unit_rate, standard_unit_rate, currency_code,
    is_quarantined, quarantine_rule, invoice_external_id, service_date. -#}
{% macro ps_billing_hold_checks() -%}
  {%- set reporting = "'" ~ var('reporting_currency') ~ "'" -%}
  {%- set line = "'line ', source_type, ' ', source_id" -%}
  {%- set in_reporting = "case when billing_currency_code <> " ~ reporting ~ " then concat(' (', "
        ~ ps_money_text('{value}') ~ ", ' ', " ~ reporting ~ ", ')') else '' end" -%}
  {%- set max_rate = var('billing_max_hourly_rate') -%}
  {%- set max_hours = var('billing_max_hours_per_entry') -%}
  {%- set max_day = var('billing_max_hours_per_worker_day') -%}
  {%- set max_line = var('billing_max_line_amount') -%}
  {%- set max_invoice = var('billing_max_invoice_amount') -%}
  {%- set max_multiple = var('billing_max_rate_card_multiple') -%}
  {{ return([
      ('quarantined', 'coalesce(is_quarantined, false)',
       "concat('quarantined: ', source_type, ' ', source_id, ' ', coalesce(quarantine_rule, 'newest version in quarantine'))"),
      ('rate_limit', "source_type = 'time_entry' and unit_rate_reporting > " ~ max_rate,
       "concat('rate_limit: ', " ~ line ~ ", ' rate ', " ~ ps_money_text('billing_unit_rate') ~ ", ' ', billing_currency_code, "
         ~ in_reporting.replace('{value}', 'unit_rate_reporting') ~ ", ' per hour > ', "
         ~ ps_money_text(max_rate) ~ ", ' ', " ~ reporting ~ ")"),
      ('hours_limit', "source_type = 'time_entry' and quantity > " ~ max_hours,
       "concat('hours_limit: ', " ~ line ~ ", ' ', " ~ ps_money_text('quantity') ~ ", ' h > ', "
         ~ ps_money_text(max_hours) ~ ", ' h per entry')"),
      ('daily_hours_limit', "source_type = 'time_entry' and worker_day_hours > " ~ max_day,
       "concat('daily_hours_limit: ', " ~ line ~ ", ': ', " ~ ps_money_text('worker_day_hours')
         ~ ", ' h approved for the person on ', cast(service_date as " ~ dbt.type_string() ~ "), ' > ', "
         ~ ps_money_text(max_day) ~ ", ' h per day')"),
      ('amount_limit', 'line_amount_reporting > ' ~ max_line,
       "concat('amount_limit: ', " ~ line ~ ", ' amount ', " ~ ps_money_text('billing_amount') ~ ", ' ', billing_currency_code, "
         ~ in_reporting.replace('{value}', 'line_amount_reporting') ~ ", ' > ', " ~ ps_money_text(max_line) ~ ", ' ', "
         ~ reporting ~ ")"),
      ('invoice_amount_limit', 'invoice_amount_reporting > ' ~ max_invoice,
       "concat('invoice_amount_limit: invoice ', invoice_external_id, ' amount ', "
         ~ ps_money_text('invoice_billing_amount') ~ ", ' ', billing_currency_code, "
         ~ in_reporting.replace('{value}', 'invoice_amount_reporting') ~ ", ' > ', " ~ ps_money_text(max_invoice)
         ~ ", ' ', " ~ reporting ~ ")"),
      ('rate_anomaly', "source_type = 'time_entry' and standard_unit_rate > 0 and unit_rate > "
         ~ max_multiple ~ " * standard_unit_rate",
       "concat('rate_anomaly: ', " ~ line ~ ", ' rate ', " ~ ps_money_text('unit_rate') ~ ", ' ', currency_code, ' is ', "
         ~ ps_money_text('unit_rate / standard_unit_rate') ~ ", ' x the rate card (', " ~ ps_money_text('standard_unit_rate')
         ~ ", ' ', currency_code, '), more than ', " ~ ps_money_text(max_multiple) ~ ", ' x')"),
  ]) }}
{%- endmacro %}

{#- The names of the hold checks that fail, comma-separated (null when none). -#}
{% macro ps_billing_hold_errors() -%}
  {%- set checks = [] -%}
  {%- for name, condition, _detail in ps_billing_hold_checks() -%}
    {%- do checks.append((name, condition)) -%}
  {%- endfor -%}
  {{ ps_failed_checks(checks) }}
{%- endmacro %}

{#- What each failing hold check says, one "rule: detail" per line of text (null when none). -#}
{% macro ps_billing_hold_details() -%}
  nullif(concat_ws(chr(10)
    {%- for _name, condition, detail in ps_billing_hold_checks() %},
    case when {{ condition }} then {{ detail }} end
    {%- endfor %}
  ), '')
{%- endmacro %}
