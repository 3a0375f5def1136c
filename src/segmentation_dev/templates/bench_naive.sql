{#- The bench's naive baseline (segmentation_dev.bench_scale, figure naive_20): one segment
    written the way a hand-written dbt project would write it, as an independent query whose
    activity conditions are correlated subqueries over the (indexed) staged activity tables:
    for every candidate contact, one lateral aggregate over that contact's rows of each
    activity object it reads, instead of the pipeline's one grouped pass per object.

    The bench copies this file into the macros of its own copy of the project (never into
    the repository's macros/), and calls it through `dbt compile --inline` with arguments
    the compiler wrote from validated definitions: `definition` is the segment model's
    payload (render.RenderResult.payloads) and `features` the contact_features meta per
    object (compiler.preview.segment_features). The contact side (inputs, candidates,
    condition tree, operators) is the project's own macros, so only the activity side
    differs from the segment model; the bench checks that both give the same members.

    The aggregate expressions repeat contact_features' on purpose: this is the baseline the
    one pass is measured against, written out as a person would. -#}
{% macro bench_naive_segment(definition, features) -%}
    {%- set relations = {} -%}
    {%- for object, meta in features.items() -%}
        {%- if object not in activity_objects() -%}
            {{ exceptions.raise_compiler_error("bench_naive_segment: unknown object '" ~ (object | string) ~ "'") }}
        {%- endif -%}
        {%- do relations.update({object: 'lateral (' ~ bench_correlated_features(meta) ~ ')'}) -%}
    {%- endfor %}
with

{{ segment_inputs(definition) }}

final as (
    select
        c.account_id,
        {{ segment_literal(definition.key, 'string') }} as segment_key,
        c.contact_id,
        a.as_of_date
    {{- segment_candidates(definition, {'features': relations}) }}
        and {{ segment_node_sql(definition.condition) }}
)

select * from final
{%- endmacro %}

{#- One contact's features of one object: a subquery correlated on the outer contact `c`
    and its as-of row `a` (segment_candidates' aliases). -#}
{% macro bench_correlated_features(meta) -%}
    {%- set time_col = 'src.' ~ segment_identifier(meta.time_field) -%}
    {%- set local_day = segment_local_date(time_col) -%}
    {%- set cutoff = '(' ~ time_col ~ ' is null or ' ~ local_day ~ ' <= a.as_of_date)' -%}
    select
        src.account_id,
        src.contact_id,
        {%- for f in meta.features %}
        {%- set conditions = [cutoff] -%}
        {%- if f.window and f.window.last_days -%}
            {%- do conditions.append(feature_time_condition(meta, 'within_last', {'unit': 'days', 'n': f.window.last_days})) -%}
        {%- elif f.window and f.window.between -%}
            {%- do conditions.append(feature_time_condition(meta, 'between', f.window.between)) -%}
        {%- endif -%}
        {%- if f.filter -%}
            {%- do conditions.append(segment_node_sql(f.filter, 'activity')) -%}
        {%- endif -%}
        {%- if f.aggregate == 'count' -%}
            {%- set expr = 'count(*)' -%}
        {%- else -%}
            {%- set col = 'src.' ~ segment_identifier(f.field_column) -%}
            {%- if f.aggregate in ('min', 'max') and f.field_type == 'timestamp' -%}
                {%- set col = segment_local_date(col) -%}
            {%- endif -%}
            {%- set expr = {'count_distinct': 'count(distinct ' ~ col ~ ')', 'sum': 'sum(' ~ col ~ ')',
                'avg': 'avg(' ~ col ~ ')', 'min': 'min(' ~ col ~ ')', 'max': 'max(' ~ col ~ ')'}[f.aggregate] -%}
        {%- endif %}
        {{ expr }} filter (where {{ conditions | join(' and ') }}) as {{ feature_id(f.id) }}{{ ',' if not loop.last }}
        {%- endfor %}
    {%- if meta.via_link %}
    from (
        select
            links.contact_id,
            links.is_primary,
            companies.*
        from {{ ref('stg_crm__contact_companies') }} as links
        inner join {{ ref(meta.model) }} as companies
            on
                links.account_id = companies.account_id
                and links.company_id = companies.company_id
    ) as src
    {%- else %}
    from {{ ref(meta.model) }} as src
    {%- endif %}
    where src.account_id = c.account_id and src.contact_id = c.contact_id
    group by src.account_id, src.contact_id
{%- endmacro %}
