{#- The run's as-of date for every account: the `as_of` var (YYYY-MM-DD) when set, else
    the moment dbt started (run_started_at, UTC) as a date in the account's timezone. The
    database clock is never read, so a rerun with the same var gives the same answer. -#}
{% macro segment_as_of_date_sql(timezone_column) -%}
    {%- set as_of = var('as_of', none) -%}
    {%- if as_of is not none and (as_of | string | trim) != '' -%}
        {%- set text = as_of | string | trim -%}
        {%- if not modules.re.fullmatch('^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$', text) -%}
            {{ exceptions.raise_compiler_error(
                "var 'as_of' must be a date like 2026-01-31, got '" ~ text ~ "'") }}
        {%- endif -%}
        cast('{{ text }}' as date)
    {%- else -%}
        {{ segment_to_local_date("cast('" ~ run_started_at.strftime("%Y-%m-%d %H:%M:%S") ~ "+00' as timestamptz)", timezone_column) }}
    {%- endif -%}
{%- endmacro %}
