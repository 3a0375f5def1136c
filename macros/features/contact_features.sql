{#- One pass over an activity table: every feature some enabled segment uses becomes one
    `filter (where ...)` aggregate of a single `group by account_id, contact_id`.

    meta: {object, model, time_field, via_link, features: [{id, aggregate, field,
    field_column, field_type, filter, window}]}, written by
    segmentation.compiler.features from validated definitions only.

    `inputs` (segment_preview_sql): {as_of: relation, account: account_id}, to compute
    one account's features for another as-of date without the models.

    Row aliases: src (the activity row; for companies the company joined to its link row,
    with the link's is_primary), a (the account's as-of row from int_segment_as_of).
    Rows dated after the account's as-of date never count; rows without a date do. Filters
    and windows are condition trees in the 'activity' scope of segment_node_sql, so they use
    the same operators as contact conditions. -#}
{% macro contact_features(meta, inputs=none) -%}
    {%- set time_col = 'src.' ~ segment_identifier(meta.time_field) -%}
    {%- set local_day = segment_local_date(time_col) -%}
    {%- set cutoff = '(' ~ time_col ~ ' is null or ' ~ local_day ~ ' <= a.as_of_date)' %}
with

as_of as (
    select * from {{ inputs.as_of if inputs else ref('int_segment_as_of') }}
),

{% if meta.via_link -%}
activity as (
    select
        links.contact_id,
        links.is_primary,
        companies.*
    from {{ ref('stg_crm__contact_companies') }} as links
    inner join {{ ref(meta.model) }} as companies
        on
            links.account_id = companies.account_id
            and links.company_id = companies.company_id
),
{%- else -%}
activity as (
    select * from {{ ref(meta.model) }}
),
{%- endif %}

final as (
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
        {{ expr }} filter (
            where
                {{ conditions | join('\n                and ') }}
        ) as {{ feature_id(f.id) }}{{ ',' if not loop.last }}
        {%- endfor %}
    from activity as src
    inner join as_of as a on src.account_id = a.account_id
    {%- if inputs %}
    where src.account_id = {{ segment_literal(inputs.account, 'string') }}
    {%- endif %}
    group by src.account_id, src.contact_id
)

select * from final
{%- endmacro %}

{#- A window is a condition on the object's time field: `within: {last_days: N}` means
    exactly `{field: <time field>, op: within_last, value: {days: N}}`. -#}
{% macro feature_time_condition(meta, op, value) -%}
    {{ segment_node_sql({'kind': 'condition', 'entity': meta.object, 'column': meta.time_field,
        'type': 'timestamp', 'op': op, 'value': value}, 'activity') }}
{%- endmacro %}
