{#- How each crm_raw table is keyed and deduplicated. The staging models and
    int_crm__rejected_rows both read this, so they always pick the same version of a row.

    key:           what "one row" means (tenants never share a row, so account_id is part of it)
    order_by:      latest version first. Tables with updated_at: latest updated_at, then latest
                   _loaded_at; others: latest load, then their natural timestamp. _row_hash
                   (md5 of the whole raw row) breaks any remaining tie deterministically.
    contact:       'required' | 'optional' (NULL allowed) | none: whether rows must point at a
                   live contact of their own account
    check_account: whether account_id must exist in stg_crm__accounts
    timestamps, dates, numbers:
                   the other columns that conditions read and crm_plausibility.sql checks
                   (the order_by columns are always checked)
    bad_values:    'reject' (the row is rejected) | 'null' (contacts: the value becomes NULL)
    checked:       false for accounts only: one version per primary key, nothing to order -#}
{% macro crm_table_spec(table) -%}
    {%- set by_updated = ['updated_at desc nulls last', '_loaded_at desc', '_row_hash'] -%}
    {%- set specs = {
        'accounts': {'key': ['account_id'], 'order_by': ['_loaded_at desc', '_row_hash'],
                     'contact': none, 'check_account': false, 'checked': false},
        'users': {'key': ['account_id', 'user_id'], 'order_by': ['_loaded_at desc', '_row_hash'],
                  'contact': none, 'check_account': true},
        'contacts': {'key': ['account_id', 'contact_id'], 'order_by': by_updated,
                     'contact': none, 'check_account': true, 'bad_values': 'null',
                     'timestamps': ['created_at', 'consent_updated_at'],
                     'dates': ['date_of_birth'], 'numbers': ['loyalty_points']},
        'companies': {'key': ['account_id', 'company_id'], 'order_by': by_updated,
                      'contact': none, 'check_account': true,
                      'timestamps': ['created_at'], 'numbers': ['employee_count', 'annual_revenue']},
        'contact_companies': {'key': ['account_id', 'contact_id', 'company_id'],
                              'order_by': ['_loaded_at desc', '_row_hash'],
                              'contact': 'required', 'check_account': true},
        'deals': {'key': ['account_id', 'deal_id'], 'order_by': by_updated,
                  'contact': 'optional', 'check_account': true,
                  'timestamps': ['created_at', 'closed_at'], 'dates': ['expected_close_date'],
                  'numbers': ['amount']},
        'tickets': {'key': ['account_id', 'ticket_id'], 'order_by': by_updated,
                    'contact': 'required', 'check_account': true,
                    'timestamps': ['created_at', 'resolved_at']},
        'conversations': {'key': ['account_id', 'conversation_id'],
                          'order_by': ['last_message_at desc nulls last', '_loaded_at desc', '_row_hash'],
                          'contact': 'required', 'check_account': true,
                          'timestamps': ['started_at'], 'numbers': ['message_count']},
        'campaigns': {'key': ['account_id', 'campaign_id'],
                      'order_by': ['_loaded_at desc', 'sent_at desc nulls last', '_row_hash'],
                      'contact': none, 'check_account': true},
        'campaign_events': {'key': ['account_id', 'event_id'],
                            'order_by': ['_loaded_at desc', 'occurred_at desc nulls last', '_row_hash'],
                            'contact': 'required', 'check_account': true},
        'orders': {'key': ['account_id', 'order_id'],
                   'order_by': ['_loaded_at desc', 'ordered_at desc nulls last', '_row_hash'],
                   'contact': 'required', 'check_account': true, 'numbers': ['amount']},
    } -%}
    {%- if table not in specs -%}
        {{ exceptions.raise_compiler_error("crm_table_spec: unknown crm table '" ~ table ~ "'") }}
    {%- endif -%}
    {{ return(specs[table]) }}
{%- endmacro %}

{#- The raw columns the dedup order of `table` reads (besides the key). -#}
{% macro crm_order_columns(table) -%}
    {%- set columns = [] -%}
    {%- for term in crm_table_spec(table)['order_by'] -%}
        {%- do columns.append(term.split(' ')[0]) -%}
    {%- endfor -%}
    {{ return(columns) }}
{%- endmacro %}

{#- One row per key of `table`: its latest plausible version. Rows with a NULL key part
    cannot be told apart, so each distinct one is kept (and later rejected as 'missing_key').
    A version whose order columns are implausible (crm_plausible_version: 9999-01-01, year 1,
    infinity) does not compete at all: otherwise it would win, or lose, forever. -#}
{% macro latest_per_key(relation, table) -%}
    {%- set spec = crm_table_spec(table) -%}
    {%- set key = spec['key'] -%}
    {%- set null_key = [] -%}
    {%- for column in key -%}{%- do null_key.append(column ~ ' is null') -%}{%- endfor -%}
    select distinct on (
        {{ key | join(', ') }},
        case when {{ null_key | join(' or ') }} then _row_hash end
    ) *
    from (select * from {{ relation }}) as versions
    where {{ crm_plausible_version(table, 'versions') }}
    order by
        {{ key | join(', ') }},
        case when {{ null_key | join(' or ') }} then _row_hash end,
        {{ spec['order_by'] | join(', ') }}
{%- endmacro %}

{#- md5 of the whole raw row: the last, deterministic tie-break between versions. -#}
{% macro crm_row_hash(source_alias) -%}
    md5(cast({{ source_alias }} as text))
{%- endmacro %}
