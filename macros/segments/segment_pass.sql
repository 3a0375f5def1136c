{#- One-pass evaluation (dbt var segment_strategy: one_pass, the default; per_segment is one
    model and one scan per segment). The payloads are written by
    segmentation.compiler.onepass from validated definitions only; every column name is a
    generated model name or atom__<n>, checked again here.

    segment_pass(pass): one wide row per contact of the pass's scope (templates: every
    account a template applies to; else one account), a boolean column per segment:
    - pass_0, the one scan: the contacts joined to what the scope reads (primary company,
      rfm, cluster, feature models, the template scopes, the template pass's columns an
      account's definitions refer to) computing every atom;
    - pass_<k>: the segments of dependency level k, as boolean algebra over the columns of
      pass_<k-1> (in_segment reads the referenced segment's column);
    - only contacts that are in at least one segment are kept. -#}
{% macro segment_pass(pass) -%}
    {%- set template = pass.scope == '*' -%}
    {%- set definition = {'account': pass.scope, 'entities': pass.entities, 'activity_objects': pass.activity_objects} -%}
    {%- set joins = [] -%}
    {%- if template and pass.template_scopes | length > 0 -%}
        {%- do joins.append('\n    inner join template_scopes as ts on c.account_id = ts.account_id') -%}
    {%- endif -%}
    {%- if pass.imports | length > 0 -%}
        {%- do joins.append('\n    left join ' ~ ref(pass.imports[0].model) ~ ' as imported\n        on\n            c.account_id = imported.account_id\n            and c.contact_id = imported.contact_id') -%}
    {%- endif -%}
    {%- set layers = pass.layers | length %}
with

as_of as (
    select * from {{ ref('int_segment_as_of') }}
),

contacts as (
    select * from {{ ref('stg_crm__contacts') }}
    {%- if not template %}
    where account_id = {{ segment_literal(pass.scope, 'string') }}
    {%- endif %}
),
{%- if 'company' in pass.entities %}

primary_companies as (
    select * from {{ ref('int_segment_primary_companies') }}
),
{%- endif %}
{%- if template and pass.template_scopes | length > 0 %}

{#- which accounts each template applies to (package gating, overrides) -#}
template_scopes as (
    select
        account_id,
        {%- for key in pass.template_scopes %}
        bool_or(segment_key = {{ segment_literal(key, 'string') }}) as scope__{{ loop.index0 }}{{ ',' if not loop.last }}
        {%- endfor %}
    from {{ ref('int_segment_scopes') }}
    where is_template
    group by account_id
),
{%- endif %}

pass_0 as (
    select
        {%- for item in pass.imports %}
        coalesce(imported.{{ segment_pass_column(item.column) }}, false) as {{ segment_pass_column(item.column) }},
        {%- endfor %}
        {%- for atom in pass.atoms %}
        {{ segment_node_sql(atom.node) }} as {{ segment_pass_column(atom.column) }},
        {%- endfor %}
        c.account_id,
        c.contact_id,
        a.as_of_date
    {{- segment_candidates(definition, none, joins | join('')) }}
    {%- if layers > 0 %}
    {{ segment_pass_fence() }}
    {%- endif %}
),
{%- for layer in pass.layers %}
    {%- set k = loop.index %}

pass_{{ k }} as (
    select
        prev.*,
        {%- for item in layer %}
        {{ segment_node_sql(item.node) }} as {{ segment_pass_column(item.column) }}{{ ',' if not loop.last }}
        {%- endfor %}
    from pass_{{ k - 1 }} as prev
    {%- if not loop.last %}
    {{ segment_pass_fence() }}
    {%- endif %}
),
{%- endfor %}

final as (
    select
        account_id,
        contact_id,
        as_of_date,
        {%- for item in pass.outputs %}
        {{ segment_pass_column(item.column) }}{{ ',' if not loop.last }}
        {%- endfor %}
    from pass_{{ layers }}
    where
        {%- for item in pass.outputs %}
        {{ segment_pass_column(item.column) }}{{ ' or' if not loop.last }}
        {%- endfor %}
)

select * from final
{%- endmacro %}

{#- A column of a pass: a generated model name or atom__<n>, nothing else. -#}
{% macro segment_pass_column(name) -%}
    {%- if not modules.re.fullmatch('^(seg__[a-z0-9_]+|atom__[0-9]+)$', name | string) or name | length > 63 -%}
        {{ exceptions.raise_compiler_error("segment_pass_column: bad column " ~ (name | string)) }}
    {%- endif -%}
    {{ name }}
{%- endmacro %}

{#- The thin per-segment model over its pass (one_pass): the members of one segment, the
    same columns as the per_segment model. -#}
{% macro segment_pass_view(definition) -%}
    {%- if not modules.re.fullmatch('^seg_pass__[a-z0-9_]+$', definition.pass | string) -%}
        {{ exceptions.raise_compiler_error("segment_pass_view: bad pass model " ~ (definition.pass | string)) }}
    {%- endif %}
select
    account_id,
    {{ segment_literal(definition.key, 'string') }} as segment_key,
    contact_id,
    as_of_date,
    {{ segment_literal(definition.definition_hash, 'string') }} as definition_hash
from {{ ref(definition.pass) }}
where {{ segment_pass_column(definition.column) }}
{%- endmacro %}

{#- The run's evaluation strategy, checked: one_pass (default) or per_segment. -#}
{% macro segment_strategy() -%}
    {%- set strategy = var('segment_strategy', 'one_pass') -%}
    {%- if strategy not in ('one_pass', 'per_segment') -%}
        {{ exceptions.raise_compiler_error("dbt var segment_strategy must be one_pass or per_segment, got '" ~ (strategy | string) ~ "'") }}
    {%- endif -%}
    {{ return(strategy) }}
{%- endmacro %}

{#- How a generated seg__ model is materialized: a view over its pass, or its own table. -#}
{% macro segment_model_materialization() -%}
    {{ return('view' if segment_strategy() == 'one_pass' else 'table') }}
{%- endmacro %}

{#- Nodes that exist only inside a pass (never in a definition's tree). -#}

{#- A template's scope flag (template_scopes): does the template apply to the account. -#}
{% macro segment_node__pass_flag(node, scope='contact') -%}
    ts.scope__{{ node.index | int }}
{%- endmacro %}

{#- An account's own segment evaluated in the template pass: its account only. -#}
{% macro segment_node__pass_account(node, scope='contact') -%}
    (c.account_id = {{ segment_literal(node.account, 'string') }})
{%- endmacro %}

{#- A column the previous layer computed (an atom or a segment). -#}
{% macro segment_node__pass_column(node, scope='contact') -%}
    prev.{{ segment_pass_column(node.column) }}
{%- endmacro %}

{#- in_segment inside a pass: the referenced segment's column of the previous layer, per
    source restricted to (only_accounts) or away from (except_accounts) accounts. -#}
{% macro segment_node__pass_ref(node, scope='contact') -%}
    ({%- for source in node.sources -%}
        (prev.{{ segment_pass_column(source.column) }}
        {%- if source.only_accounts | length > 0 %} and prev.account_id in ({{ segment_literal_list(source.only_accounts, 'string') }}){% endif %}
        {%- if source.except_accounts | length > 0 %} and prev.account_id not in ({{ segment_literal_list(source.except_accounts, 'string') }}){% endif -%}
        ){{ ' or ' if not loop.last }}
    {%- endfor -%})
{%- endmacro %}

{#- Membership rows of one pass: one row per (contact, segment column that is true). -#}
{% macro segment_pass_unpivot(relation, outputs) -%}
    {{ return(adapter.dispatch('segment_pass_unpivot', 'segmentation')(relation, outputs)) }}
{%- endmacro %}

{#- PostgreSQL: one scan of the pass. Each row makes an array of the positions of its true
    columns, unnested and joined to the outputs by position: only a member makes a row. (A
    lateral VALUES row per output and contact, filtered afterwards, spent most of its time
    producing the rows it then dropped: docs/performance.md.) -#}
{% macro postgres__segment_pass_unpivot(relation, outputs) -%}
select
    p.account_id,
    m.segment_key,
    p.contact_id,
    p.as_of_date,
    m.definition_hash
from {{ relation }} as p
cross join lateral unnest(array_remove(array[
    {%- for item in outputs %}
        case when p.{{ segment_pass_column(item.column) }} then {{ loop.index }} end{{ ',' if not loop.last }}
    {%- endfor %}
], null)) as t (position)
inner join (
    values
    {%- for item in outputs %}
        ({{ loop.index }}, {{ segment_literal(item.key, 'string') }}, {{ segment_literal(item.definition_hash, 'string') }}){{ ',' if not loop.last }}
    {%- endfor %}
) as m (position, segment_key, definition_hash)
    on t.position = m.position
{%- endmacro %}

{#- Portable: one select per segment column (an engine without LATERAL VALUES). -#}
{% macro default__segment_pass_unpivot(relation, outputs) -%}
    {%- for item in outputs %}
select
    account_id,
    {{ segment_literal(item.key, 'string') }} as segment_key,
    contact_id,
    as_of_date,
    {{ segment_literal(item.definition_hash, 'string') }} as definition_hash
from {{ relation }}
where {{ segment_pass_column(item.column) }}
        {%- if not loop.last %}
union all
        {%- endif %}
    {%- endfor %}
{%- endmacro %}

{#- Keeps the planner from folding a pass layer into the next (which would evaluate a
    referenced segment again wherever it is read): PostgreSQL never pulls up a subquery
    with OFFSET. Other engines: nothing. -#}
{% macro segment_pass_fence() -%}
    {{ return(adapter.dispatch('segment_pass_fence', 'segmentation')()) }}
{%- endmacro %}

{% macro postgres__segment_pass_fence() -%}
    offset 0
{%- endmacro %}

{% macro default__segment_pass_fence() -%}
{%- endmacro %}
