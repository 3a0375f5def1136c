{#- The rendered segment definitions, as data for int_segment_scopes, segment_memberships
    and segment_catalogue. `segments compile` writes
    macros/segments/generated/segment_registry.sql defining `postgres__segment_registry`,
    which adapter.dispatch prefers over this empty default (so the project still parses
    before anything is compiled). Shape:
      {"segments": [ {key, account, model, enabled, definition_hash, name, packages, ...} ]} -#}
{% macro segment_registry() -%}
    {{ return(adapter.dispatch('segment_registry', 'segmentation')()) }}
{%- endmacro %}

{% macro default__segment_registry() -%}
    {{ return({'segments': []}) }}
{%- endmacro %}

{#- One row per (account, segment, contact): under segment_strategy one_pass (default) the
    passes unpivoted (segment_pass_unpivot), under per_segment the union of every built
    segment model. Registry entries (segments, passes) of an account in the dbt var
    excluded_accounts are left out, so a failed account's models need not be built. -#}
{% macro segment_membership_sql(registry) -%}
    {%- set excluded = var('excluded_accounts', none) or [] -%}
    {%- set one_pass = segment_strategy() == 'one_pass' and registry.passes is defined -%}
    {%- set built = [] -%}
    {%- if one_pass -%}
        {%- for item in registry.passes if item.scope not in excluded and item.outputs | length > 0 -%}
            {%- do built.append(item) -%}
        {%- endfor -%}
    {%- else -%}
        {%- for segment in registry.segments if segment.enabled and segment.account not in excluded -%}
            {%- do built.append(segment) -%}
        {%- endfor -%}
    {%- endif -%}
    {%- if built | length == 0 %}
select
    cast(null as text) as account_id,
    cast(null as text) as segment_key,
    cast(null as text) as contact_id,
    cast(null as date) as as_of_date,
    cast(null as text) as definition_hash
where false
    {%- elif one_pass -%}
        {%- for item in built %}
{{ segment_pass_unpivot(ref(item.model), item.outputs) }}
            {%- if not loop.last %}
union all
            {%- endif -%}
        {%- endfor -%}
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

{#- One row per definition in the registry, as written (templates once, scope '*'). The
    columns int_segment_scopes and segment_catalogue read; `packages` is the list render
    derived from gating.PACKAGE_FEATURES for a template with has: (NULL: every package). -#}
{% macro segment_definitions_sql(registry) -%}
    {%- set columns = [
        ('segment_key', 'string', 'key'), ('model_name', 'string', 'model'),
        ('name', 'string', 'name'), ('description', 'string', 'description'),
        ('owner', 'string', 'owner'), ('visibility', 'string', 'visibility'),
        ('definition_hash', 'string', 'definition_hash'), ('source_file', 'string', 'source_file'),
    ] -%}
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
        cast(null as text []) as packages
    where false
    {%- endfor %}
{%- endmacro %}

{#- THE template expansion (int_segment_scopes): one row per (account, segment key) the
    definitions declare. An account-scoped definition is its own scope. A template applies to
    every account in stg_crm__accounts whose package is in its `packages` (when it has any)
    and that has no definition of its own with the same key: an account's own file
    overrides the template, also when it is disabled. -#}
{% macro segment_scopes_sql(registry) -%}
with

accounts as (
    select account_id, package from {{ ref('stg_crm__accounts') }}
),

definitions as (
    {{- segment_definitions_sql(registry) }}
),

own as (
    select
        scope as account_id,
        segment_key,
        model_name,
        'account' as source,
        is_template,
        enabled,
        definition_hash,
        source_file
    from definitions
    where not is_template
),

templated as (
    select
        accounts.account_id,
        definitions.segment_key,
        definitions.model_name,
        'template' as source,
        definitions.is_template,
        definitions.enabled,
        definitions.definition_hash,
        definitions.source_file
    from definitions
    inner join accounts
        on definitions.packages is null or accounts.package = any(definitions.packages)
    where
        definitions.is_template
        and not exists (
            select 1
            from own
            where
                own.account_id = accounts.account_id
                and own.segment_key = definitions.segment_key
        )
),

final as (
    select * from own
    union all
    select * from templated
)

select * from final
{%- endmacro %}

{#- One row per (account, definition) in int_segment_scopes, with the definition's
    catalogue columns (name, owner, bounds, ...), for the run's accounts only (vars
    accounts / excluded_accounts): the audit and publish see only those. -#}
{% macro segment_catalogue_sql(registry) -%}
with

scopes as (
    select * from {{ ref('int_segment_scopes') }}
),

definitions as (
    {{- segment_definitions_sql(registry) }}
),

final as (
    select
        scopes.account_id,
        scopes.segment_key,
        scopes.model_name,
        scopes.is_template,
        definitions.name,
        definitions.description,
        definitions.owner,
        definitions.visibility,
        definitions.tags,
        scopes.enabled,
        scopes.definition_hash,
        cast(definitions.expect_min_members as integer) as expect_min_members,
        cast(definitions.expect_max_members as integer) as expect_max_members,
        definitions.expect_max_change_pct,
        scopes.source_file
    from scopes
    inner join definitions
        on
            scopes.model_name = definitions.model_name
            and scopes.is_template = definitions.is_template
    where {{ segment_run_accounts_sql('scopes.account_id') }}
)

select * from final
{%- endmacro %}
