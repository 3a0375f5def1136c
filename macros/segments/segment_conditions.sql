{#- Condition tree -> SQL boolean expression: the one walker of all / any / not trees.

    The tree is the normalised JSON the compiler writes (src/segmentation/compiler).
    `segment_node_sql` dispatches on node.kind to a macro named `segment_node__<kind>`, so a
    new node kind only needs a new macro. Every node renders to an expression that is
    true or false, never NULL, so `not` is an exact complement. Conditions compare through
    segment_compare (segment_operators.sql), the one implementation of each operator.

    `scope` says which rows the tree's fields are read from:
    - 'contact' (a segment's condition): aliases c (the contact), co (its primary company,
      when used), rfm (its rfm_scores row) and cl (its contact_clusters row), when used, the
      feature models feat_<object> (has:) and a (the account's as-of row: as_of_date,
      timezone);
    - 'activity' (the `where:` and `within:` of has:, inside contact_features): the
      activity row src and a; only all / any / not / condition nodes. -#}
{% macro segment_node_sql(node, scope='contact') -%}
    {%- set kind = node.kind | string -%}
    {%- if not modules.re.fullmatch('^[a-z_]+$', kind) or context.get('segment_node__' ~ kind) is none -%}
        {{ exceptions.raise_compiler_error("segment_node_sql: unknown node kind '" ~ kind ~ "'") }}
    {%- endif -%}
    {%- if scope not in ('contact', 'activity') -%}
        {{ exceptions.raise_compiler_error("segment_node_sql: unknown scope '" ~ (scope | string) ~ "'") }}
    {%- endif -%}
    {%- if scope == 'activity' and kind not in ('all', 'any', 'not', 'condition') -%}
        {{ exceptions.raise_compiler_error("segment_node_sql: '" ~ kind ~ "' cannot be used in an activity filter") }}
    {%- endif -%}
    {{ context['segment_node__' ~ kind](node, scope) }}
{%- endmacro %}

{% macro segment_node__all(node, scope='contact') -%}
    ({%- for child in node.nodes -%}
        {{ segment_node_sql(child, scope) }}{{ " and " if not loop.last }}
    {%- endfor -%})
{%- endmacro %}

{% macro segment_node__any(node, scope='contact') -%}
    ({%- for child in node.nodes -%}
        {{ segment_node_sql(child, scope) }}{{ " or " if not loop.last }}
    {%- endfor -%})
{%- endmacro %}

{% macro segment_node__not(node, scope='contact') -%}
    (not {{ segment_node_sql(node.node, scope) }})
{%- endmacro %}

{% macro segment_node__condition(node, scope='contact') -%}
    {{ segment_compare(segment_field_sql(node, scope), node.op, node.get('value'), node.type) }}
{%- endmacro %}

{#- Which table alias holds an entity's columns: in the activity scope every field is a
    column of the activity row src. -#}
{% macro segment_entity_alias(entity, scope='contact') -%}
    {%- if scope == 'activity' -%}
        {%- if entity not in activity_objects() -%}
            {{ exceptions.raise_compiler_error("segment_entity_alias: unknown object '" ~ (entity | string) ~ "'") }}
        {%- endif -%}
        src
    {%- else -%}
        {%- set aliases = {'contact': 'c', 'company': 'co', 'rfm': 'rfm', 'cluster': 'cl'} -%}
        {%- if entity not in aliases -%}
            {{ exceptions.raise_compiler_error("segment_entity_alias: unknown entity '" ~ (entity | string) ~ "'") }}
        {%- endif -%}
        {{ aliases[entity] }}
    {%- endif -%}
{%- endmacro %}

{#- The field as a typed SQL expression. Timestamps compare by their calendar date in the
    account's timezone; custom fields are read from jsonb and are NULL when the stored
    value doesn't have the declared type. -#}
{% macro segment_field_sql(node, scope='contact') -%}
    {%- set column = segment_entity_alias(node.entity, scope) ~ "." ~ segment_identifier(node.column) -%}
    {%- if node.json_key is defined and node.json_key is not none -%}
        {%- if not modules.re.fullmatch('^[A-Za-z_][A-Za-z0-9_]{0,62}$', node.json_key) -%}
            {{ exceptions.raise_compiler_error("segment_field_sql: bad custom field key") }}
        {%- endif -%}
        {{ segment_custom_field_sql(column, node.json_key, node.type) }}
    {%- elif node.type == 'timestamp' -%}
        {{ segment_local_date(column) }}
    {%- else -%}
        {{ column }}
    {%- endif -%}
{%- endmacro %}

{#- A custom field read from the jsonb custom_fields column (adapter-specific: JSON access
    differs per engine; docs/scaling.md). -#}
{% macro segment_custom_field_sql(column, key, type) -%}
    {{ return(adapter.dispatch('segment_custom_field_sql', 'segmentation')(column, key, type)) }}
{%- endmacro %}

{% macro default__segment_custom_field_sql(column, key, type) -%}
    {{ exceptions.raise_compiler_error("segment_custom_field_sql: no implementation for adapter '" ~ adapter.type() ~ "' (docs/scaling.md)") }}
{%- endmacro %}

{% macro postgres__segment_custom_field_sql(column, key, type) -%}
    {%- set value = "(" ~ column ~ " -> '" ~ key ~ "')" -%}
    {%- set text = "(" ~ column ~ " ->> '" ~ key ~ "')" -%}
    {%- if type == 'string' -%}
        {{ text }}
    {%- elif type == 'number' -%}
        (case
            when jsonb_typeof({{ value }}) in ('number', 'string')
                and {{ text }} ~ '^\s*[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)\s*$'
                then cast({{ text }} as numeric)
        end)
    {%- elif type == 'boolean' -%}
        (case {{ text }} when 'true' then true when 'false' then false end)
    {%- elif type == 'date' -%}
        {#- Only real calendar dates: a string like 2024-02-30 is NULL, not an error. -#}
        (case
            when {{ text }} ~ '^[1-9][0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$'
                and to_char(
                    cast(left({{ text }}, 7) || '-01' as date)
                    + (cast(right({{ text }}, 2) as integer) - 1),
                    'YYYY-MM'
                ) = left({{ text }}, 7)
                then cast({{ text }} as date)
        end)
    {%- elif type == 'array' -%}
        (case
            when jsonb_typeof({{ value }}) = 'array'
                then array(select jsonb_array_elements_text({{ value }}))
        end)
    {%- else -%}
        {{ exceptions.raise_compiler_error("segment_custom_field_sql: unsupported custom type " ~ (type | string)) }}
    {%- endif -%}
{%- endmacro %}
