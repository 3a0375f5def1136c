{#- The rendered segment definitions, as data for segment_memberships and
    segment_catalogue. `segments compile` writes
    macros/segments/generated/segment_registry.sql defining `postgres__segment_registry`,
    which adapter.dispatch prefers over this empty default (so the project still parses
    before anything is compiled). Shape:
      {"segments": [ {key, account, model, enabled, definition_hash, name, ...} ]} -#}
{% macro segment_registry() -%}
    {{ return(adapter.dispatch('segment_registry', 'segmentation')()) }}
{%- endmacro %}

{% macro default__segment_registry() -%}
    {{ return({'segments': []}) }}
{%- endmacro %}

{#- Union of every built segment model: one row per (account, segment, contact). -#}
{% macro segment_membership_sql(registry) -%}
    {%- set built = [] -%}
    {%- for segment in registry.segments if segment.enabled -%}
        {%- do built.append(segment) -%}
    {%- endfor -%}
    {%- if built | length == 0 %}
select
    cast(null as text) as account_id,
    cast(null as text) as segment_key,
    cast(null as text) as contact_id,
    cast(null as date) as as_of_date,
    cast(null as text) as definition_hash
where false
    {%- else -%}
        {%- for segment in built %}
select
    account_id,
    segment_key,
    contact_id,
    as_of_date,
    definition_hash
from {{ ref(segment.model) }}
            {%- if not loop.last %}
union all
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
{%- endmacro %}

{#- One row per (account, definition): account-scoped definitions as they are, templates
    once per account in stg_crm__accounts that does not override them. -#}
{% macro segment_catalogue_sql(registry) -%}
    {%- set columns = [
        ('segment_key', 'string', 'key'), ('model_name', 'string', 'model'),
        ('name', 'string', 'name'), ('description', 'string', 'description'),
        ('owner', 'string', 'owner'), ('visibility', 'string', 'visibility'),
        ('definition_hash', 'string', 'definition_hash'), ('source_file', 'string', 'source_file'),
    ] -%}
with

accounts as (
    select account_id, package from {{ ref('stg_crm__accounts') }}
),

definitions as (
    {%- for segment in registry.segments %}
    select
        {{ segment_literal(segment.account, 'string') }} as scope,
        {%- for name, type, key in columns %}
        {{ segment_literal(segment[key], type) }} as {{ name }},
        {%- endfor %}
        {{ segment_literal(segment.account == '*', 'boolean') }} as is_template,
        {%- if segment.tags | length > 0 %}
        cast(array[{{ segment_literal_list(segment.tags, 'string') }}] as text []) as tags,
        {%- else %}
        cast(array[] as text []) as tags,
        {%- endif %}
        {{ segment_literal(segment.enabled, 'boolean') }} as enabled,
        {%- for name in ('min_members', 'max_members', 'max_change_pct') %}
            {%- set value = segment.expect[name] %}
            {%- if value is none %}
        cast(null as numeric) as expect_{{ name }},
            {%- else %}
        {{ segment_literal(value | string, 'number') }} as expect_{{ name }},
            {%- endif %}
        {%- endfor %}
        {%- if segment.overridden_by | default([]) | length > 0 %}
        cast(array[{{ segment_literal_list(segment.overridden_by, 'string') }}] as text []) as overridden_by,
        {%- else %}
        cast(array[] as text []) as overridden_by,
        {%- endif %}
        {#- a template with has: exists only for accounts whose package includes activity #}
        {%- if segment.packages | default(none) %}
        cast(array[{{ segment_literal_list(segment.packages, 'string') }}] as text []) as packages
        {%- else %}
        cast(null as text []) as packages
        {%- endif %}
        {%- if not loop.last %}
    union all
        {%- endif %}
    {%- else %}
    select
        cast(null as text) as scope,
        {%- for name, type, key in columns %}
        cast(null as text) as {{ name }},
        {%- endfor %}
        cast(null as boolean) as is_template,
        cast(null as text []) as tags,
        cast(null as boolean) as enabled,
        cast(null as numeric) as expect_min_members,
        cast(null as numeric) as expect_max_members,
        cast(null as numeric) as expect_max_change_pct,
        cast(null as text []) as overridden_by,
        cast(null as text []) as packages
    where false
    {%- endfor %}
),

final as (
    select
        coalesce(accounts.account_id, definitions.scope) as account_id,
        definitions.segment_key,
        definitions.model_name,
        definitions.is_template,
        definitions.name,
        definitions.description,
        definitions.owner,
        definitions.visibility,
        definitions.tags,
        definitions.enabled,
        definitions.definition_hash,
        cast(definitions.expect_min_members as integer) as expect_min_members,
        cast(definitions.expect_max_members as integer) as expect_max_members,
        definitions.expect_max_change_pct,
        definitions.source_file
    from definitions
    left join accounts
        on
            definitions.is_template
            and not accounts.account_id = any(definitions.overridden_by)
            and (definitions.packages is null or accounts.package = any(definitions.packages))
    where not definitions.is_template or accounts.account_id is not null
)

select * from final
{%- endmacro %}
