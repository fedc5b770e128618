{#- Money rule: no time entry carries negative hours (ingestion quarantines them; a negative
    value reaching the facts would silently cut revenue and cost). -#}
select time_entry_id, hours, billable_hours
from {{ ref('fct_time_entries') }}
where hours < 0
   or billable_hours < 0
   or billable_hours > hours
