{#- Plausibility of raw values (docs/raw-contract.md, "Implausible values"). Every raw value
    is untrusted: a version dated 9999-01-01 would win the latest-version rule forever, an
    order in year 1 would count as "bought long ago", 'infinity' breaks date arithmetic and
    NaN compares greater than every number. One list per table says which columns are
    checked, so the staging models and int_crm__rejected_rows always agree.

      infinite_date      a date/timestamp column is +/-infinity
      future_date        later than the row's _loaded_at (the run start, for _loaded_at
                         itself) plus var crm_max_future_skew
      ancient_date       earlier than var crm_min_timestamp (dates of birth:
                         crm_min_birth_date)
      non_finite_number  a numeric column is NaN or +/-infinity -#}

{#- The bounds from dbt vars, as SQL literals. Vars are operator config, but they are still
    checked so a typo is a clear compile error rather than odd SQL. -#}
{% macro crm_bounds() -%}
    {%- set skew = var('crm_max_future_skew', '1 day') | string | trim -%}
    {%- if not modules.re.match('^[0-9]{1,4} (second|minute|hour|day)s?$', skew) -%}
        {{ exceptions.raise_compiler_error(
            "var 'crm_max_future_skew' must look like '1 day' or '6 hours', got '" ~ skew ~ "'") }}
    {%- endif -%}
    {%- set out = {'skew': "interval '" ~ skew ~ "'"} -%}
    {%- for name, default in [('crm_min_timestamp', '1990-01-01'), ('crm_min_birth_date', '1900-01-01')] -%}
        {%- set text = var(name, default) | string | trim -%}
        {%- if not modules.re.match('^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$', text) -%}
            {{ exceptions.raise_compiler_error(
                "var '" ~ name ~ "' must be a date like 1990-01-01, got '" ~ text ~ "'") }}
        {%- endif -%}
        {%- do out.update({name: "date '" ~ text ~ "'"}) -%}
    {%- endfor -%}
    {%- do out.update({'run_started_at':
        "cast('" ~ run_started_at.strftime('%Y-%m-%d %H:%M:%S') ~ "+00' as timestamptz)"}) -%}
    {{ return(out) }}
{%- endmacro %}

{#- The latest plausible time of a row read through `alias`: its load time plus the skew,
    and never later than the run start plus the skew (a future _loaded_at moves nothing). -#}
{% macro crm_max_time(alias) -%}
    {%- set b = crm_bounds() -%}
    (least({{ alias }}._loaded_at, {{ b['run_started_at'] }}) + {{ b['skew'] }})
{%- endmacro %}

{#- The checked columns of `table`: [{column, kind, order}], kind timestamp | date | number.
    `order` marks the columns the latest-version rule reads (crm_table_spec().order_by): a
    version with a bad one is skipped before the versions compete (crm_plausible_version).
    The others are judged on the winning version: the row is rejected, or for contacts
    (crm_table_spec().bad_values == 'null') the value becomes NULL. deleted_at is never
    checked: any value means deleted, and dropping or nulling it would revive the contact. -#}
{% macro crm_checked_columns(table) -%}
    {%- set spec = crm_table_spec(table) -%}
    {%- set out = [] -%}
    {%- if not spec.get('checked', true) -%}{{ return(out) }}{%- endif -%}
    {%- set order = crm_order_columns(table) -%}
    {#- _loaded_at first: it bounds the others, so a bad one is the reason to report. -#}
    {%- for column in ['_loaded_at'] + order | reject('in', ['_loaded_at', '_row_hash']) | list -%}
        {%- do out.append({'column': column, 'kind': 'timestamp', 'order': true}) -%}
    {%- endfor -%}
    {%- for kind in ['timestamp', 'date', 'number'] -%}
        {%- for column in spec.get(kind ~ 's', []) -%}
            {%- do out.append({'column': column, 'kind': kind, 'order': false}) -%}
        {%- endfor -%}
    {%- endfor -%}
    {{ return(out) }}
{%- endmacro %}

{#- The lower bound of a checked column, or none. -#}
{% macro crm_min_value(check) -%}
    {%- set b = crm_bounds() -%}
    {%- if check['kind'] == 'number' -%}
        {{ return(none) }}
    {%- elif check['column'] == 'date_of_birth' -%}
        {{ return(b['crm_min_birth_date']) }}
    {%- else -%}
        {{ return(b['crm_min_timestamp']) }}
    {%- endif -%}
{%- endmacro %}

{#- The upper bound of a checked column read through `alias`, or none. A date of birth is
    never after the load day; an expected close date is a plan, so it may lie far ahead. -#}
{% macro crm_max_value(check, alias) -%}
    {%- set b = crm_bounds() -%}
    {%- if check['kind'] == 'number' or check['column'] == 'expected_close_date' -%}
        {{ return(none) }}
    {%- elif check['column'] == '_loaded_at' -%}
        {{ return('(' ~ b['run_started_at'] ~ ' + ' ~ b['skew'] ~ ')') }}
    {%- elif check['kind'] == 'date' -%}
        {{ return('cast(' ~ crm_max_time(alias) ~ ' as date)') }}
    {%- else -%}
        {{ return(crm_max_time(alias)) }}
    {%- endif -%}
{%- endmacro %}

{#- Why one checked value is implausible, or NULL (NULL values are fine). -#}
{% macro crm_value_reason(check, alias) -%}
    {%- set value = alias ~ '.' ~ check['column'] -%}
    {%- set low = crm_min_value(check) -%}
    {%- set high = crm_max_value(check, alias) -%}
    {%- if check['kind'] == 'number' -%}
        (case when cast({{ value }} as numeric) in ('NaN', 'Infinity', '-Infinity')
            then 'non_finite_number' end)
    {%- else -%}
        (case
            when not isfinite({{ value }}) then 'infinite_date'
            {%- if high is not none %}
            when {{ value }} > {{ high }} then 'future_date'
            {%- endif %}
            when {{ value }} < {{ low }} then 'ancient_date'
        end)
    {%- endif -%}
{%- endmacro %}

{#- True when a checked value is plausible: plain comparisons, so the planner can estimate
    them (see crm_keep_row). Must agree with crm_value_reason(). -#}
{% macro crm_value_ok(check, alias) -%}
    {%- set value = alias ~ '.' ~ check['column'] -%}
    {%- set low = crm_min_value(check) -%}
    {%- set high = crm_max_value(check, alias) -%}
    {%- if check['kind'] == 'number' -%}
        ({{ value }} is null or cast({{ value }} as numeric) not in ('NaN', 'Infinity', '-Infinity'))
    {%- else -%}
        ({{ value }} is null or (
            isfinite({{ value }}) and {{ value }} >= {{ low }}
            {%- if high is not none %} and {{ value }} <= {{ high }}{% endif -%}
        ))
    {%- endif -%}
{%- endmacro %}

{#- A version may compete for "latest" only if every column the order reads is plausible. -#}
{% macro crm_plausible_version(table, alias) -%}
    {%- set checks = [] -%}
    {%- for check in crm_checked_columns(table) if check['order'] -%}
        {%- do checks.append(crm_value_ok(check, alias)) -%}
    {%- endfor -%}
    {%- if checks -%}{{ crm_filter_estimated_true(checks | join(' and ')) }}{%- else -%}true{%- endif -%}
{%- endmacro %}

{#- `condition` as a filter that PostgreSQL estimates to keep almost every row (0.995, its
    default for IS NOT NULL on an expression), as it does on real data. Written plainly,
    each per-row bound (x <= _loaded_at + skew) is estimated at 1/3: a few of them estimate
    a 30k-row table at 1 row and the staging semi-joins turn into nested loops over every
    contact (minutes at 60k contacts). -#}
{% macro crm_filter_estimated_true(condition) -%}
    ((case when {{ condition }} then true end) is not null)
{%- endmacro %}

{#- The first implausible order column of a version: (reason, column) as two CASE
    expressions over the same checks, NULL when the version is plausible. -#}
{% macro crm_version_reason(table, alias, part) -%}
    {%- if crm_checked_columns(table) | selectattr('order') | list | length == 0 -%}
        cast(null as text)
    {%- else -%}
    (case
        {%- for check in crm_checked_columns(table) if check['order'] %}
        when {{ crm_value_reason(check, alias) }} is not null
            then {{ crm_value_reason(check, alias) if part == 'reason' else "'" ~ check['column'] ~ "'" }}
        {%- endfor %}
    end)
    {%- endif -%}
{%- endmacro %}

{#- The same for the other checked columns, judged on the winning version. -#}
{% macro crm_value_reasons(table, alias, part) -%}
    {%- if crm_checked_columns(table) | rejectattr('order') | list | length == 0 -%}
        cast(null as text)
    {%- else -%}
    (case
        {%- for check in crm_checked_columns(table) if not check['order'] %}
        when {{ crm_value_reason(check, alias) }} is not null
            then {{ crm_value_reason(check, alias) if part == 'reason' else "'" ~ check['column'] ~ "'" }}
        {%- endfor %}
    end)
    {%- endif -%}
{%- endmacro %}

{#- A checked value, or NULL when implausible (contacts keep the row, lose the value). -#}
{% macro crm_plausible_or_null(table, column, alias) -%}
    {%- set found = [] -%}
    {%- for check in crm_checked_columns(table) if check['column'] == column -%}
        {%- do found.append(check) -%}
    {%- endfor -%}
    {%- if not found -%}
        {{ exceptions.raise_compiler_error("crm_plausible_or_null: " ~ table ~ "." ~ column ~ " is not checked") }}
    {%- endif -%}
    (case when {{ crm_value_ok(found[0], alias) }} then {{ alias }}.{{ column }} end)
{%- endmacro %}
