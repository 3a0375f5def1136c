{#- The segment side of `has:` (dispatched by segment_node_sql on kind 'has'): compare one
    column of a per-contact feature model, left-joined as feat_<object> by feature_joins,
    with the same operators as every condition (segment_compare). Feature models hold only
    contacts with rows, so over no rows count, count_distinct and sum read 0, and avg, min
    and max are unset (NULL); min and max of a timestamp are already local dates. -#}
{% macro segment_node__has(node, scope='contact') -%}
    {%- if node.object not in activity_objects() -%}
        {{ exceptions.raise_compiler_error("segment_node__has: unknown object '" ~ (node.object | string) ~ "'") }}
    {%- endif -%}
    {{ segment_compare(segment_has_value_sql(node), node.op, node.get('value'), node.type) }}
{%- endmacro %}

{#- The value a `has:` compares: the feature column of feat_<object>, 0 for a contact
    without rows when the aggregate reads 0 over no rows. -#}
{% macro segment_has_value_sql(node) -%}
    {%- if node.object not in activity_objects() -%}
        {{ exceptions.raise_compiler_error("segment_has_value_sql: unknown object '" ~ (node.object | string) ~ "'") }}
    {%- endif -%}
    {%- set column = 'feat_' ~ node.object ~ '.' ~ feature_id(node.feature) -%}
    {%- if node.zero_when_empty -%}
        {%- set column = 'coalesce(' ~ column ~ ', 0)' -%}
    {%- endif -%}
    {{ column }}
{%- endmacro %}

{#- `in_segment`: membership of another segment of the same account, read from the models
    that hold its members (resolved by the compiler; see references.py). -#}
{% macro segment_node__in_segment(node, scope='contact') -%}
    {%- if node.sources is not defined or node.sources | length == 0 -%}
        {{ exceptions.raise_compiler_error("segment_node__in_segment: '" ~ (node.key | string) ~ "' was not resolved") }}
    {%- endif -%}
    ({%- for source in node.sources -%}
        {%- if not modules.re.fullmatch('^seg__[a-z0-9_]+$', source.model) -%}
            {{ exceptions.raise_compiler_error("segment_node__in_segment: bad model " ~ (source.model | string)) }}
        {%- endif -%}
        exists (
            select 1 from {{ ref(source.model) }} as ref_seg
            where
                ref_seg.account_id = c.account_id
                and ref_seg.contact_id = c.contact_id
                {%- if source.only_accounts | length > 0 %}
                and ref_seg.account_id in ({{ segment_literal_list(source.only_accounts, 'string') }})
                {%- endif %}
                {%- if source.except_accounts | length > 0 %}
                and ref_seg.account_id not in ({{ segment_literal_list(source.except_accounts, 'string') }})
                {%- endif %}
        ){{ ' or ' if not loop.last }}
    {%- endfor -%})
{%- endmacro %}

{% macro activity_objects() -%}
    {{ return(['campaign_events', 'companies', 'conversations', 'deals', 'orders', 'tickets']) }}
{%- endmacro %}

{#- Left joins of the feature models a segment reads, onto the contact row `c`.
    `relations` (object -> relation name, from segment_preview_sql) replaces the models. -#}
{% macro feature_joins(objects, relations=none) -%}
    {%- for object in objects %}
        {%- if object not in activity_objects() -%}
            {{ exceptions.raise_compiler_error("feature_joins: unknown object '" ~ (object | string) ~ "'") }}
        {%- endif %}
    left join {{ relations[object] if relations else ref('int_contact_features__' ~ object) }} as feat_{{ object }}
        on
            c.account_id = feat_{{ object }}.account_id
            and c.contact_id = feat_{{ object }}.contact_id
    {%- endfor %}
{%- endmacro %}
