{#- The rejected rows of one crm_raw table, shaped like int_crm__rejected_rows.

    Re-derives each key's latest version straight from the source with the same ID
    normalisation, crm_table_spec() order and crm_rejection_reason() as the staging model,
    so "not in staging" and "listed here" are the same rows (tests/test_staging.py checks
    that every raw key lands in exactly one of them). Those rows have outcome 'dropped'.
    Two more kinds of row are listed, for keys that may still be staged:
      version_skipped  a version whose order columns are implausible did not compete for
                       "latest" (latest_per_key); one row per key, column and reason
      nulled           a checked value of a staged row became NULL (tables whose bad_values
                       are 'null': contacts); one row per key and column -#}
{% macro crm_rejected_rows(table) -%}
    {%- set spec = crm_table_spec(table) -%}
    {%- set columns = spec['key'] + ([] if spec['contact'] is none or 'contact_id' in spec['key'] else ['contact_id']) -%}
    {%- set checked_columns = [] -%}
    {%- for check in crm_checked_columns(table) -%}
        {%- do checked_columns.append(check['column']) -%}
    {%- endfor -%}
    {%- set passed = [] -%}
    {%- for column in crm_order_columns(table) + checked_columns
        + (['deleted_at'] if table == 'contacts' else [])
        if column != '_row_hash' and column not in passed -%}
        {%- do passed.append(column) -%}
    {%- endfor -%}
    {%- set raw_select -%}
            select
                {%- for column in columns %}
                {{ normalize_id('source.' ~ column) }} as {{ column }},
                {%- endfor %}
                {%- for column in passed %}
                source.{{ column }},
                {%- endfor %}
                {{ crm_row_hash('source') }} as _row_hash
            from {{ source('crm', table) }} as source
    {%- endset -%}
    {%- set raw_rows = '(' ~ raw_select ~ ') as raw_rows' -%}
    {%- if table == 'contact_companies' -%}
        {%- set record_id = "concat(#.contact_id, '/', #.company_id)" -%}
    {%- else -%}
        {%- set record_id = '#.' ~ spec['key'][-1] -%}
    {%- endif -%}
    {%- set contact_id = '#.contact_id' if 'contact_id' in columns else 'cast(null as text)' -%}
    {%- set value_reasons = "('infinite_date', 'future_date', 'ancient_date', 'non_finite_number')" -%}
    {%- set nulls = spec.get('bad_values', 'reject') == 'null' -%}
    {#- One pass over the latest versions: the row's own reason ('dropped') and, for tables
        that null bad values, one candidate per checked column ('nulled', staged rows only). -#}
    select
        '{{ table }}' as source_table,
        checked.account_id,
        {{ record_id | replace('#', 'checked') }} as record_id,
        {{ contact_id | replace('#', 'checked') }} as contact_id,
        listed.reason,
        listed.column_name,
        listed.outcome
    from (
        select
            latest.*,
            {{ crm_rejection_reason(table, 'latest') }} as reason
        from (
            {{ latest_per_key(raw_rows, table) }}
        ) as latest
    ) as checked
    cross join lateral (
        values
        (
            checked.reason,
            case
                when checked.reason in {{ value_reasons }}
                    then {{ crm_value_reasons(table, 'checked', 'column') }}
            end,
            'dropped'
        )
        {%- if nulls %}
        {%- for check in crm_checked_columns(table) if not check['order'] %},
        (
            case
                when checked.reason is null
                    {%- if table == 'contacts' %} and checked.deleted_at is null{% endif %}
                    then {{ crm_value_reason(check, 'checked') }}
            end,
            '{{ check["column"] }}',
            'nulled'
        )
        {%- endfor %}
        {%- endif %}
    ) as listed (reason, column_name, outcome)
    where listed.reason is not null
    {%- if crm_checked_columns(table) | selectattr('order') | list %}

    union all

    select distinct
        '{{ table }}' as source_table,
        skipped.account_id,
        {{ record_id | replace('#', 'skipped') }} as record_id,
        {{ contact_id | replace('#', 'skipped') }} as contact_id,
        {{ crm_version_reason(table, 'skipped', 'reason') }} as reason,
        {{ crm_version_reason(table, 'skipped', 'column') }} as column_name,
        'version_skipped' as outcome
    from ({{ raw_select }}) as skipped
    where not {{ crm_plausible_version(table, 'skipped') }}
    {%- endif %}
{%- endmacro %}
