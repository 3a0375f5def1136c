{#- Conditions over an activity object's own fields (the `where:` under `has:`), in the
    normalised JSON of the segment language, on the activity row aliased `src` and the
    as-of row aliased `a`. Same operators and NULL rules as contact conditions: positive
    operators are false on NULL, negative ones (neq, not_in, not_contains, not_between,
    is_not_set) are their exact complements, so every node is true or false. -#}
{% macro feature_filter_sql(node) -%}
    {%- if node.kind in ('all', 'any') -%}
        ({%- for child in node.nodes -%}
            {{ feature_filter_sql(child) }}{{ (' and ' if node.kind == 'all' else ' or ') if not loop.last }}
        {%- endfor -%})
    {%- elif node.kind == 'not' -%}
        (not {{ feature_filter_sql(node.node) }})
    {%- elif node.kind == 'condition' -%}
        {%- set column = 'src.' ~ segment_identifier(node.column) -%}
        {{ activity_compare(column, node.op, node.get('value'), node.type) }}
    {%- else -%}
        {{ exceptions.raise_compiler_error("feature_filter_sql: unexpected node '" ~ (node.kind | string) ~ "'") }}
    {%- endif -%}
{%- endmacro %}

{#- One operator on a column expression; true or false, never NULL. Timestamps compare by
    their date in the account's timezone (a.timezone) against a.as_of_date. The SQL of each
    operator is that of segment_condition_sql (the contact side), so the two agree; the
    property test in tests/test_activity_property.py checks both against one evaluator. -#}
{% macro activity_compare(column, op, value, type) -%}
    {%- set negative = segment_negative_ops() -%}
    {%- if op in negative -%}
        (not coalesce({{ activity_compare_positive(column, negative[op], value, type) }}, false))
    {%- else -%}
        coalesce({{ activity_compare_positive(column, op, value, type) }}, false)
    {%- endif -%}
{%- endmacro %}

{% macro activity_compare_positive(column, op, value, type) -%}
    {%- set x = 'cast((' ~ column ~ ' at time zone a.timezone) as date)' if type == 'timestamp' else column -%}
    {%- set as_of = 'a.as_of_date' -%}
    {%- if op == 'eq' -%}
        {{ x }} = {{ segment_literal(value, type) }}
    {%- elif op == 'in' -%}
        {{ x }} in ({{ segment_literal_list(value, type) }})
    {%- elif op == 'ieq' -%}
        lower({{ x }}) = lower({{ segment_literal(value, type) }})
    {%- elif op == 'contains' -%}
        strpos({{ x }}, {{ segment_literal(value, type) }}) > 0
    {%- elif op == 'icontains' -%}
        strpos(lower({{ x }}), lower({{ segment_literal(value, type) }})) > 0
    {%- elif op == 'starts_with' -%}
        starts_with({{ x }}, {{ segment_literal(value, type) }})
    {%- elif op == 'ends_with' -%}
        right({{ x }}, length({{ segment_literal(value, type) }})) = {{ segment_literal(value, type) }}
    {%- elif op == 'matches' -%}
        {{ x }} ~ {{ segment_literal(value, 'string') }}
    {%- elif op in ('gt', 'gte', 'lt', 'lte', 'before', 'after', 'on') -%}
        {%- set symbol = {'gt': '>', 'gte': '>=', 'lt': '<', 'lte': '<=',
                          'before': '<', 'after': '>', 'on': '='}[op] -%}
        {{ x }} {{ symbol }} {{ segment_literal(value, type) }}
    {%- elif op == 'between' -%}
        {{ x }} between {{ segment_literal(value[0], type) }} and {{ segment_literal(value[1], type) }}
    {%- elif op == 'within_last' -%}
        {{ x }} between {{ segment_shifted_date(as_of, value, -1) }} and {{ as_of }}
    {%- elif op == 'more_than_ago' -%}
        {{ x }} < {{ segment_shifted_date(as_of, value, -1) }}
    {%- elif op == 'within_next' -%}
        {{ x }} between {{ as_of }} and {{ segment_shifted_date(as_of, value) }}
    {%- elif op == 'in_calendar' -%}
        {%- set bounds = segment_calendar_bounds(value) -%}
        ({{ x }} >= {{ bounds[0] }} and {{ x }} < {{ bounds[1] }})
    {%- elif op == 'anniversary_within_next' -%}
        {%- set years = "cast(extract(year from " ~ as_of ~ ") - extract(year from " ~ x ~ ") as integer)" -%}
        {%- set this_year = "cast(" ~ x ~ " + make_interval(years => " ~ years ~ ") as date)" -%}
        {%- set next_year = "cast(" ~ x ~ " + make_interval(years => " ~ years ~ " + 1) as date)" -%}
        (case when {{ this_year }} >= {{ as_of }} then {{ this_year }} else {{ next_year }} end)
        <= {{ segment_shifted_date(as_of, value) }}
    {%- elif op == 'is_true' -%}
        {{ x }} is true
    {%- elif op == 'is_false' -%}
        {{ x }} is false
    {%- elif op == 'is_set' -%}
        {%- if type == 'string' -%}
            ({{ x }} is not null and {{ x }} <> '')
        {%- else -%}
            {{ x }} is not null
        {%- endif -%}
    {%- else -%}
        {{ exceptions.raise_compiler_error("activity_compare: operator '" ~ (op | string) ~ "' is not supported on activity fields") }}
    {%- endif -%}
{%- endmacro %}
