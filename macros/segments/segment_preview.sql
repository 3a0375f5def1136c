{#- One segment evaluated for one account without building anything (`segments preview`
    and `segments why`): the same segment_inputs, segment_candidates and segment_node_sql
    as the segment model, but reading the staged data directly, with this run's as-of date
    and only the features this segment needs, computed for this account (contact_features).

    spec (written by segmentation.compiler.preview from a compiled plan, never from YAML
    text): {definition: the model payload, account, built_features: [object] (read from the
    feature models the last build made, when they hold this as-of date and every feature
    needed; the others are computed here), nodes: [{id, node, value}] (the
    condition tree in pre-order, node 0 the root; value: whether it reads a value), steps: [[node index, ...]] (the funnel: each step
    is the AND of its nodes), features: {object: contact_features meta}, mode: 'preview' or
    'why', limit, contact_id, as_of}. `as_of` (YYYY-MM-DD) is in the spec, not the `as_of`
    var, so dbt's partial parse survives a change of date; unset, it is each account's
    today, as in a run (segment_as_of_date_sql). One row, one json column:
    - preview: {members, candidates, funnel: [count per step], sample: [{contact_id,
      full_name, value_<i>}]};
    - why: the contact's row {contact_id, full_name, as_of_date, node_<i>, value_<i>}, or
      no row when the account has no such contact on the as-of date. -#}
{% macro segment_preview_sql(spec) -%}
    {%- set definition = spec.definition -%}
    {%- set inputs = {'as_of': 'preview_as_of', 'account': spec.account, 'scopes': 'preview_scopes', 'features': {}} -%}
    {%- for object in spec.features -%}
        {%- if object not in activity_objects() -%}
            {{ exceptions.raise_compiler_error("segment_preview_sql: unknown object '" ~ (object | string) ~ "'") }}
        {%- endif -%}
        {%- do inputs.features.update({object: 'preview_features__' ~ object}) -%}
    {%- endfor -%}
    {#- feature models the last build made for this as-of date with every column needed -#}
    {%- for object in spec.built_features | default([]) -%}
        {%- if object not in activity_objects() -%}
            {{ exceptions.raise_compiler_error("segment_preview_sql: unknown object '" ~ (object | string) ~ "'") }}
        {%- endif -%}
        {%- do inputs.features.update({object: ref('int_contact_features__' ~ object)}) -%}
    {%- endfor -%}
    {%- if spec.mode not in ('preview', 'why') -%}
        {{ exceptions.raise_compiler_error("segment_preview_sql: unknown mode '" ~ (spec.mode | string) ~ "'") }}
    {%- endif %}
with

preview_as_of as (
    select
        account_id,
        timezone,
        {%- if spec.as_of %}
        {{ segment_literal(spec.as_of, 'date') }} as as_of_date
        {%- else %}
        {{ segment_as_of_date_sql('timezone') }} as as_of_date
        {%- endif %}
    from {{ ref('stg_crm__accounts') }}
    where account_id = {{ segment_literal(spec.account, 'string') }}
),
{%- if definition.account == '*' %}

preview_scopes as (
    {{ segment_scopes_sql(segment_registry()) | indent(4) }}
),
{%- endif %}
{%- for object, meta in spec.features.items() %}

preview_features__{{ object }} as (
    {{ contact_features(meta, inputs) | indent(4) }}
),
{%- endfor %}

{{ segment_inputs(definition, inputs) }}

evaluated as (
    select
        c.contact_id,
        c.full_name,
        a.as_of_date,
        {%- for item in spec.nodes %}
        {{ segment_node_sql(item.node) }} as node_{{ item.id | int }},
            {%- if item.value %}
        cast({{ segment_node_value_sql(item.node) }} as text) as value_{{ item.id | int }},
            {%- endif %}
        {%- endfor %}
        true as is_candidate
    {{- segment_candidates(definition, inputs) }}
    {%- if spec.mode == 'why' %}
        and c.contact_id = {{ segment_literal(spec.contact_id, 'string') }}
    {%- endif %}
)
{%- if spec.mode == 'why' %}

select row_to_json(evaluated) as result from evaluated
{%- else %},

totals as (
    select
        count(*) as candidates,
        count(*) filter (where node_0) as members,
        json_build_array(
            {%- for step in spec.steps %}
            count(*) filter (where {% for index in step %}node_{{ index | int }}{{ ' and ' if not loop.last }}{% endfor %}){{ ',' if not loop.last }}
            {%- endfor %}
        ) as funnel
    from evaluated
),

sample as (
    select
        contact_id,
        full_name
        {%- for item in spec.nodes if item.value %},
        value_{{ item.id | int }}
        {%- endfor %}
    from evaluated
    where node_0
    order by contact_id
    limit {{ spec.limit | int }}
)

select
    json_build_object(
        'candidates', totals.candidates,
        'members', totals.members,
        'funnel', totals.funnel,
        'sample', (
            select coalesce(json_agg(row_to_json(sample) order by sample.contact_id), '[]')
            from sample
        )
    ) as result
from totals
{%- endif %}
{%- endmacro %}

{#- The value a condition node reads, as SQL: the field of a condition, the feature
    value of a has:; none for a node without one (all, any, not, in_segment). -#}
{% macro segment_node_value_sql(node) -%}
    {%- if node.kind == 'condition' -%}
        {{ segment_field_sql(node, 'contact') }}
    {%- elif node.kind == 'has' -%}
        {{ segment_has_value_sql(node) }}
    {%- else -%}
        {{ exceptions.raise_compiler_error("segment_node_value_sql: '" ~ (node.kind | string) ~ "' nodes have no value") }}
    {%- endif -%}
{%- endmacro %}
