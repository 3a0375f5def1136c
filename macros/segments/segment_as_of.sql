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

{#- The run's accounts as a condition on `account_column`: var `accounts` (a list of account
    ids; absent = every account) minus var `excluded_accounts` (accounts failed earlier in
    the run). Ids are quoted by segment_literal; a var that is not a list stops the compile. -#}
{% macro segment_run_accounts_sql(account_column) -%}
    {%- set included = var('accounts', none) -%}
    {%- set excluded = var('excluded_accounts', none) or [] -%}
    {%- for name, value in [('accounts', included), ('excluded_accounts', excluded)] -%}
        {%- if value is not none and (value is string or value is mapping or value is not iterable) -%}
            {{ exceptions.raise_compiler_error(
                "var '" ~ name ~ "' must be a list of account ids, got " ~ (value | string)) }}
        {%- endif -%}
    {%- endfor -%}
    {%- set parts = [] -%}
    {%- if included is not none -%}
        {%- if included | length == 0 -%}
            {%- do parts.append('false') -%}
        {%- else -%}
            {%- do parts.append(account_column ~ ' in (' ~ segment_literal_list(included, 'string') ~ ')') -%}
        {%- endif -%}
    {%- endif -%}
    {%- if excluded | length > 0 -%}
        {%- do parts.append(account_column ~ ' not in (' ~ segment_literal_list(excluded, 'string') ~ ')') -%}
    {%- endif -%}
    {{- parts | join(' and ') if parts else 'true' -}}
{%- endmacro %}
