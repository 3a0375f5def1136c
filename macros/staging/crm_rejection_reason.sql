{#- Why the latest version of a row of `table` is kept out of staging, or NULL if it is kept.
    `alias` names a relation with the table's normalised key columns (and contact_id).

      missing_key            a key column (or account_id) is NULL/blank
      unknown_account        account_id is not in stg_crm__accounts
      deleted_contact        its contact is soft-deleted (deleted_at set in the latest version)
      cross_account_contact  its contact_id exists, but only in another account: tenants never mix
      unknown_contact        its contact_id exists nowhere (or is NULL where a contact is required)
      infinite_date, future_date, ancient_date, non_finite_number
                             a checked value is implausible (crm_plausibility.sql); tables
                             whose bad_values are 'null' (contacts) keep the row instead

    Contact checks apply to the activity tables only (crm_table_spec(table).contact). -#}
{% macro crm_rejection_reason(table, alias) -%}
    {%- set spec = crm_table_spec(table) -%}
    {%- set contacts = ref('base_crm__contact_versions') -%}
    (case
        {%- for column in spec['key'] %}
        when {{ alias }}.{{ column }} is null then 'missing_key'
        {%- endfor %}
        {%- if spec['check_account'] %}
        when not exists (
            select 1 from {{ ref('stg_crm__accounts') }} as known_account
            where known_account.account_id = {{ alias }}.account_id
        ) then 'unknown_account'
        {%- endif %}
        {%- if spec.get('bad_values', 'reject') == 'reject' %}
        {%- for check in crm_checked_columns(table) if not check['order'] %}
        when {{ crm_value_reason(check, alias) }} is not null then {{ crm_value_reason(check, alias) }}
        {%- endfor %}
        {%- endif %}
        {%- if spec['contact'] is not none %}
        when {{ alias }}.contact_id is null
            then {{ "null" if spec['contact'] == 'optional' else "'unknown_contact'" }}
        when exists (
            select 1 from {{ contacts }} as contact_version
            where contact_version.account_id = {{ alias }}.account_id
                and contact_version.contact_id = {{ alias }}.contact_id
                and contact_version.is_deleted
        ) then 'deleted_contact'
        when exists (
            select 1 from {{ contacts }} as contact_version
            where contact_version.account_id = {{ alias }}.account_id
                and contact_version.contact_id = {{ alias }}.contact_id
        ) then null
        when exists (
            select 1 from {{ contacts }} as contact_version
            where contact_version.contact_id = {{ alias }}.contact_id
        ) then 'cross_account_contact'
        else 'unknown_contact'
        {%- endif %}
    end)
{%- endmacro %}

{#- The staging models' filter: true exactly when crm_rejection_reason() is NULL.

    Written as plain conjunctions of EXISTS so that PostgreSQL plans semi-joins with sane
    row estimates (a `case ... end is null` filter is estimated at 0.5% of the rows, which
    sends every downstream join into nested loops). tests/test_staging.py checks that the
    two agree: each raw key is either staged or listed in int_crm__rejected_rows. -#}
{% macro crm_keep_row(table, alias) -%}
    {%- set spec = crm_table_spec(table) -%}
    {%- set contacts = ref('base_crm__contact_versions') -%}
    {%- set live_contact -%}
        exists (
            select 1 from {{ contacts }} as contact_version
            where contact_version.account_id = {{ alias }}.account_id
                and contact_version.contact_id = {{ alias }}.contact_id
                and not contact_version.is_deleted
        )
    {%- endset -%}
    (
        {%- for column in spec['key'] %}
        {{ alias }}.{{ column }} is not null
        {%- if not loop.last %} and{% endif %}
        {%- endfor %}
        {%- if spec['check_account'] %}
        and exists (
            select 1 from {{ ref('stg_crm__accounts') }} as known_account
            where known_account.account_id = {{ alias }}.account_id
        )
        {%- endif %}
        {%- set value_checks = [] -%}
        {%- if spec.get('bad_values', 'reject') == 'reject' -%}
            {%- for check in crm_checked_columns(table) if not check['order'] -%}
                {%- do value_checks.append(crm_value_ok(check, alias)) -%}
            {%- endfor -%}
        {%- endif %}
        {%- if value_checks %}
        and {{ crm_filter_estimated_true(value_checks | join(' and ')) }}
        {%- endif %}
        {%- if spec['contact'] == 'required' %}
        and {{ live_contact }}
        {%- elif spec['contact'] == 'optional' %}
        and ({{ alias }}.contact_id is null or {{ live_contact }})
        {%- endif %}
    )
{%- endmacro %}
