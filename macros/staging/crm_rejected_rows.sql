{#- The rejected rows of one crm_raw table, shaped like int_crm__rejected_rows.

    Re-derives each key's latest version straight from the source with the same ID
    normalisation, crm_table_spec() order and crm_rejection_reason() as the staging model,
    so "not in staging" and "listed here" are the same rows (tests/test_staging.py checks
    that every raw key lands in exactly one of them). -#}
{% macro crm_rejected_rows(table) -%}
    {%- set spec = crm_table_spec(table) -%}
    {%- set columns = spec['key'] + ([] if spec['contact'] is none or 'contact_id' in spec['key'] else ['contact_id']) -%}
    {%- set order_columns = [] -%}
    {%- for column in crm_order_columns(table) if column != '_row_hash' -%}
        {%- do order_columns.append(column) -%}
    {%- endfor -%}
    {%- set raw_rows -%}
        (
            select
                {%- for column in columns %}
                {{ normalize_id('source.' ~ column) }} as {{ column }},
                {%- endfor %}
                {%- for column in order_columns %}
                source.{{ column }},
                {%- endfor %}
                {{ crm_row_hash('source') }} as _row_hash
            from {{ source('crm', table) }} as source
        ) as raw_rows
    {%- endset -%}
    {%- if table == 'contact_companies' -%}
        {%- set record_id = "concat(checked.contact_id, '/', checked.company_id)" -%}
    {%- else -%}
        {%- set record_id = 'checked.' ~ spec['key'][-1] -%}
    {%- endif -%}
    select
        '{{ table }}' as source_table,
        checked.account_id,
        {{ record_id }} as record_id,
        {{ 'checked.contact_id' if 'contact_id' in columns else 'cast(null as text)' }} as contact_id,
        checked.reason
    from (
        select
            latest.*,
            {{ crm_rejection_reason(table, 'latest') }} as reason
        from (
            {{ latest_per_key(raw_rows, table) }}
        ) as latest
    ) as checked
    where checked.reason is not null
{%- endmacro %}
