{#- The rendered priority groups (segment_defs/<account>/_groups/*.yml). `segments compile`
    writes macros/features/generated/segment_group_registry.sql defining
    `postgres__segment_group_registry`, which adapter.dispatch prefers over this empty
    default. Shape: {"groups": [{group, account, order: [...], fallback, name,
    definition_hash, source_file}]} -#}
{% macro segment_group_registry() -%}
    {{ return(adapter.dispatch('segment_group_registry', 'segmentation')()) }}
{%- endmacro %}

{% macro default__segment_group_registry() -%}
    {{ return({'groups': []}) }}
{%- endmacro %}

{#- One row per (account, group, entry): the ordered segments, then the fallback label. -#}
{% macro segment_group_rows_sql(registry) -%}
    {%- if registry.groups | length == 0 %}
    select
        cast(null as text) as account_id,
        cast(null as text) as group_key,
        cast(null as text) as group_name,
        cast(null as integer) as priority,
        cast(null as text) as segment_key,
        cast(null as boolean) as is_fallback,
        cast(null as text) as definition_hash,
        cast(null as text) as source_file
    where false
    {%- else -%}
        {%- for group in registry.groups -%}
            {%- set entries = [] -%}
            {%- for key in group.order -%}
                {%- do entries.append((key, false)) -%}
            {%- endfor -%}
            {%- if group.fallback -%}
                {%- do entries.append((group.fallback, true)) -%}
            {%- endif -%}
            {%- for key, is_fallback in entries %}
    select
        {{ segment_literal(group.account, 'string') }} as account_id,
        {{ segment_literal(group.group, 'string') }} as group_key,
        {{ segment_literal(group.name, 'string') }} as group_name,
        {{ segment_literal(loop.index, 'integer') }} as priority,
        {{ segment_literal(key, 'string') }} as segment_key,
        {{ segment_literal(is_fallback, 'boolean') }} as is_fallback,
        {{ segment_literal(group.definition_hash, 'string') }} as definition_hash,
        {{ segment_literal(group.source_file, 'string') }} as source_file
                {%- if not loop.last %}
    union all
                {%- endif -%}
            {%- endfor -%}
            {%- if not loop.last %}
    union all
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
{%- endmacro %}
