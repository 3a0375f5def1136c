{#- The body of one generated segment model (models/segments/generated/seg__*.sql):
    one row per member contact, for one account or, for a template, for every account
    except those that define a segment with the same key themselves.

    Contacts created after the as-of date are never members, so a backfill for an old
    as-of date only sees contacts that existed then. Inputs are the tables
    int_segment_contacts and int_segment_primary_companies, not the staging views: the
    views are costly to re-run per segment (and per joined row). -#}
{% macro segment_model(definition) -%}
    {%- set entities = definition.entities | default(['contact']) -%}
    {%- set template = definition.account == '*' -%}
with

as_of as (
    select * from {{ ref('int_segment_as_of') }}
),

contacts as (
    select * from {{ ref('int_segment_contacts') }}
    {%- if not template %}
    where account_id = {{ segment_literal(definition.account, 'string') }}
    {%- elif definition.overridden_by | default([]) | length > 0 %}
    where account_id not in ({{ segment_literal_list(definition.overridden_by, 'string') }})
    {%- endif %}
),
{%- if 'company' in entities %}

primary_companies as (
    select * from {{ ref('int_segment_primary_companies') }}
),
{%- endif %}

final as (
    select
        c.account_id,
        {{ segment_literal(definition.key, 'string') }} as segment_key,
        c.contact_id,
        a.as_of_date,
        {{ segment_literal(definition.definition_hash, 'string') }} as definition_hash
    from contacts as c
    inner join as_of as a on c.account_id = a.account_id
    {%- if 'company' in entities %}
    left join primary_companies as co
        on
            c.account_id = co.account_id
            and c.contact_id = co.contact_id
    {%- endif %}
    {{- feature_joins(definition.activity_objects | default([])) }}
    where
        (c.created_at is null or {{ segment_local_date('c.created_at') }} <= a.as_of_date)
        {%- if definition.packages | default(none) %}
        {#- a template with has: is built only for accounts whose package includes activity #}
        and c.account_id in (
            select accounts.account_id from {{ ref('stg_crm__accounts') }} as accounts
            where accounts.package in ({{ segment_literal_list(definition.packages, 'string') }})
        )
        {%- endif %}
        and {{ segment_node_sql(definition.condition) }}
)

select * from final
{%- endmacro %}
