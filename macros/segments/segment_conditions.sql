{#- Condition tree -> SQL boolean expression.

    The tree is the normalised JSON the compiler writes (src/segmentation/definitions).
    `segment_node_sql` dispatches on node.kind to a macro named `segment_node__<kind>`, so a
    new node kind only needs a new macro. Every node renders to an expression that is
    true or false, never NULL, so `not` is an exact complement.

    Row aliases in scope: c (the contact), co (its primary company, when used), a (the
    account's as-of row: as_of_date, timezone). -#}
{% macro segment_node_sql(node) -%}
    {%- set kind = node.kind | string -%}
    {%- if not modules.re.fullmatch('^[a-z_]+$', kind) or context.get('segment_node__' ~ kind) is none -%}
        {{ exceptions.raise_compiler_error("segment_node_sql: unknown node kind '" ~ kind ~ "'") }}
    {%- endif -%}
    {{ context['segment_node__' ~ kind](node) }}
{%- endmacro %}

{% macro segment_node__all(node) -%}
    ({%- for child in node.nodes -%}
        {{ segment_node_sql(child) }}{{ " and " if not loop.last }}
    {%- endfor -%})
{%- endmacro %}

{% macro segment_node__any(node) -%}
    ({%- for child in node.nodes -%}
        {{ segment_node_sql(child) }}{{ " or " if not loop.last }}
    {%- endfor -%})
{%- endmacro %}

{% macro segment_node__not(node) -%}
    (not {{ segment_node_sql(node.node) }})
{%- endmacro %}

{% macro segment_node__condition(node) -%}
    {%- set positive = segment_condition_sql(node) -%}
    {%- if node.op in segment_negative_ops() -%}
        (not coalesce({{ positive }}, false))
    {%- else -%}
        coalesce({{ positive }}, false)
    {%- endif -%}
{%- endmacro %}

{#- Negative operators are complements of a positive form: NULL (unset) matches them. -#}
{% macro segment_negative_ops() -%}
    {{ return({
        'neq': 'eq', 'not_in': 'in', 'not_contains': 'contains',
        'not_between': 'between', 'contains_none': 'contains_any', 'is_not_set': 'is_set',
    }) }}
{%- endmacro %}

{#- Which table alias holds an entity's columns. -#}
{% macro segment_entity_alias(entity) -%}
    {%- set aliases = {'contact': 'c', 'company': 'co'} -%}
    {%- if entity not in aliases -%}
        {{ exceptions.raise_compiler_error("segment_entity_alias: unknown entity '" ~ (entity | string) ~ "'") }}
    {%- endif -%}
    {{ aliases[entity] }}
{%- endmacro %}

{#- The field as a typed SQL expression. Timestamps compare by their calendar date in the
    account's timezone; custom fields are read from jsonb and are NULL when the stored
    value doesn't have the declared type. -#}
{% macro segment_field_sql(node) -%}
    {%- set column = segment_entity_alias(node.entity) ~ "." ~ segment_identifier(node.column) -%}
    {%- if node.json_key is defined and node.json_key is not none -%}
        {%- if not modules.re.fullmatch('^[A-Za-z_][A-Za-z0-9_]{0,62}$', node.json_key) -%}
            {{ exceptions.raise_compiler_error("segment_field_sql: bad custom field key") }}
        {%- endif -%}
        {{ segment_custom_field_sql(column, node.json_key, node.type) }}
    {%- elif node.type == 'timestamp' -%}
        cast(({{ column }} at time zone a.timezone) as date)
    {%- else -%}
        {{ column }}
    {%- endif -%}
{%- endmacro %}

{% macro segment_custom_field_sql(column, key, type) -%}
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

{#- A date shifted by a duration {unit, n} (n may be negated with sign=-1). -#}
{% macro segment_shifted_date(date_sql, duration, sign=1) -%}
    {%- if duration.unit not in ('days', 'weeks', 'months', 'years') -%}
        {{ exceptions.raise_compiler_error("segment_shifted_date: bad unit " ~ (duration.unit | string)) }}
    {%- endif -%}
    cast({{ date_sql }} + make_interval({{ duration.unit }} => {{ sign }} * {{ segment_literal(duration.n, 'integer') }}) as date)
{%- endmacro %}

{#- [start, end) of a calendar period around the as-of date. Weeks start on Monday. -#}
{% macro segment_calendar_bounds(period) -%}
    {%- set periods = {
        'today': ('day', 0), 'yesterday': ('day', -1), 'tomorrow': ('day', 1),
        'this_week': ('week', 0), 'last_week': ('week', -1), 'next_week': ('week', 1),
        'this_month': ('month', 0), 'last_month': ('month', -1), 'next_month': ('month', 1),
        'this_quarter': ('quarter', 0), 'last_quarter': ('quarter', -1), 'next_quarter': ('quarter', 1),
        'this_year': ('year', 0), 'last_year': ('year', -1), 'next_year': ('year', 1),
    } -%}
    {%- if period not in periods -%}
        {{ exceptions.raise_compiler_error("segment_calendar_bounds: unknown period " ~ (period | string)) }}
    {%- endif -%}
    {%- set unit, offset = periods[period] -%}
    {%- set step = {'day': 'days => 1', 'week': 'weeks => 1', 'month': 'months => 1',
                    'quarter': 'months => 3', 'year': 'years => 1'}[unit] -%}
    {%- set start = "date_trunc('" ~ unit ~ "', a.as_of_date + " ~ offset ~ " * make_interval(" ~ step ~ "))" -%}
    {{ return((
        "cast(" ~ start ~ " as date)",
        "cast(" ~ start ~ " + make_interval(" ~ step ~ ") as date)",
    )) }}
{%- endmacro %}

{#- The positive form of a condition (NULL allowed; the caller coalesces). -#}
{% macro segment_condition_sql(node) -%}
    {%- set negative = segment_negative_ops() -%}
    {%- set op = negative.get(node.op, node.op) -%}
    {%- set x = segment_field_sql(node) -%}
    {%- set t = 'string' if node.type == 'array' else node.type -%}
    {%- set as_of = "a.as_of_date" -%}
    {%- if op == 'eq' -%}
        {{ x }} = {{ segment_literal(node.value, t) }}
    {%- elif op == 'in' -%}
        {{ x }} in ({{ segment_literal_list(node.value, t) }})
    {%- elif op == 'ieq' -%}
        lower({{ x }}) = lower({{ segment_literal(node.value, t) }})
    {%- elif op == 'contains' -%}
        strpos({{ x }}, {{ segment_literal(node.value, t) }}) > 0
    {%- elif op == 'icontains' -%}
        strpos(lower({{ x }}), lower({{ segment_literal(node.value, t) }})) > 0
    {%- elif op == 'starts_with' -%}
        starts_with({{ x }}, {{ segment_literal(node.value, t) }})
    {%- elif op == 'ends_with' -%}
        right({{ x }}, length({{ segment_literal(node.value, t) }})) = {{ segment_literal(node.value, t) }}
    {%- elif op == 'matches' -%}
        {{ x }} ~ {{ segment_literal(node.value, 'string') }}
    {%- elif op in ('gt', 'gte', 'lt', 'lte', 'before', 'after', 'on') -%}
        {%- set symbol = {'gt': '>', 'gte': '>=', 'lt': '<', 'lte': '<=',
                          'before': '<', 'after': '>', 'on': '='}[op] -%}
        {{ x }} {{ symbol }} {{ segment_literal(node.value, t) }}
    {%- elif op == 'between' -%}
        {{ x }} between {{ segment_literal(node.value[0], t) }} and {{ segment_literal(node.value[1], t) }}
    {%- elif op == 'within_last' -%}
        {{ x }} between {{ segment_shifted_date(as_of, node.value, -1) }} and {{ as_of }}
    {%- elif op == 'more_than_ago' -%}
        {{ x }} < {{ segment_shifted_date(as_of, node.value, -1) }}
    {%- elif op == 'within_next' -%}
        {{ x }} between {{ as_of }} and {{ segment_shifted_date(as_of, node.value) }}
    {%- elif op == 'in_calendar' -%}
        {%- set bounds = segment_calendar_bounds(node.value) -%}
        ({{ x }} >= {{ bounds[0] }} and {{ x }} < {{ bounds[1] }})
    {%- elif op == 'anniversary_within_next' -%}
        {#- The next anniversary on or after the as-of date; a 29 February date has its
            anniversary on 28 February in other years (PostgreSQL's interval arithmetic). -#}
        {%- set years = "cast(extract(year from " ~ as_of ~ ") - extract(year from " ~ x ~ ") as integer)" -%}
        {%- set this_year = "cast(" ~ x ~ " + make_interval(years => " ~ years ~ ") as date)" -%}
        {%- set next_year = "cast(" ~ x ~ " + make_interval(years => " ~ years ~ " + 1) as date)" -%}
        (case when {{ this_year }} >= {{ as_of }} then {{ this_year }} else {{ next_year }} end)
        <= {{ segment_shifted_date(as_of, node.value) }}
    {%- elif op == 'is_true' -%}
        {{ x }} is true
    {%- elif op == 'is_false' -%}
        {{ x }} is false
    {%- elif op == 'contains_any' -%}
        {{ x }} && cast(array[{{ segment_literal_list(node.value, 'string') }}] as text [])
    {%- elif op == 'contains_all' -%}
        {{ x }} @> cast(array[{{ segment_literal_list(node.value, 'string') }}] as text [])
    {%- elif op == 'is_set' -%}
        {%- if node.type == 'string' -%}
            ({{ x }} is not null and {{ x }} <> '')
        {%- elif node.type == 'array' -%}
            coalesce(cardinality({{ x }}), 0) > 0
        {%- else -%}
            {{ x }} is not null
        {%- endif -%}
    {%- else -%}
        {{ exceptions.raise_compiler_error("segment_condition_sql: unknown operator '" ~ (node.op | string) ~ "'") }}
    {%- endif -%}
{%- endmacro %}
