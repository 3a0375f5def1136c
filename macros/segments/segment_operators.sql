{#- The operators of the segment language, each implemented once, on a column expression.

    Contact conditions (segment_node__condition), activity filters (the `where:` and
    `within:` of has:, through segment_node_sql(node, 'activity')) and the has: comparison
    itself (segment_node__has) all call segment_compare. The catalogue of operators, with
    the field types and values each takes, is src/segmentation/language/operators.py;
    tests/test_segments_operator_table.py checks that it and these macros agree.

    Every relative-time operator reads the run's as-of date, a.as_of_date (the as-of row
    aliased `a`), never the database clock. -#}

{#- `x` compared by operator `op` with `value`: true or false, never NULL. `x` is a typed
    SQL expression (a timestamp column already turned into its local date, see
    segment_local_date); `type` is the field type of the operator table. Positive
    operators are false on NULL; a negative operator is the exact complement of its
    positive form, so it matches NULL (unset). -#}
{% macro segment_compare(x, op, value, type) -%}
    {%- set negative = segment_negative_ops() -%}
    {%- if op in negative -%}
        (not coalesce({{ segment_compare_positive(x, negative[op], value, type) }}, false))
    {%- else -%}
        coalesce({{ segment_compare_positive(x, op, value, type) }}, false)
    {%- endif -%}
{%- endmacro %}

{#- The positive form (NULL allowed; segment_compare coalesces): the macro named
    segment_op__<op>, so a new operator is one new macro and one row of the table. -#}
{% macro segment_compare_positive(x, op, value, type) -%}
    {%- set name = op | string -%}
    {%- if not modules.re.fullmatch('^[a-z_]+$', name) or context.get('segment_op__' ~ name) is none -%}
        {{ exceptions.raise_compiler_error("segment_compare: unknown operator '" ~ name ~ "'") }}
    {%- endif -%}
    {{ context['segment_op__' ~ name](x, value, type) }}
{%- endmacro %}

{#- Negative operators are complements of a positive form: NULL (unset) matches them. -#}
{% macro segment_negative_ops() -%}
    {{ return({
        'neq': 'eq', 'not_in': 'in', 'not_contains': 'contains',
        'not_between': 'between', 'contains_none': 'contains_any', 'is_not_set': 'is_set',
    }) }}
{%- endmacro %}

{#- A timestamp as its calendar date in the account's timezone (a.timezone): timestamps
    compare by that date, against dates and the as-of date. -#}
{% macro segment_local_date(column) -%}
    {{ segment_to_local_date(column, 'a.timezone') }}
{%- endmacro %}

{#- Adapter-specific SQL of the segment layer (docs/scaling.md): each is one
    adapter.dispatch macro; postgres__ is what runs here, default__ says what another
    engine's adapter must supply. -#}

{#- The calendar date of a timestamp in a timezone (both SQL expressions). -#}
{% macro segment_to_local_date(timestamp_sql, timezone_sql) -%}
    {{ return(adapter.dispatch('segment_to_local_date', 'segmentation')(timestamp_sql, timezone_sql)) }}
{%- endmacro %}

{% macro postgres__segment_to_local_date(timestamp_sql, timezone_sql) -%}
    cast(({{ timestamp_sql }} at time zone {{ timezone_sql }}) as date)
{%- endmacro %}

{% macro default__segment_to_local_date(timestamp_sql, timezone_sql) -%}
    {{ exceptions.raise_compiler_error("segment_to_local_date: no implementation for adapter '" ~ adapter.type() ~ "' (docs/scaling.md)") }}
{%- endmacro %}

{#- A date plus n units (days, weeks, months, years; n an SQL integer expression), with
    month-end clamping (31 March minus one month is 28/29 February). -#}
{% macro segment_date_add(date_sql, unit, n_sql) -%}
    {%- if unit not in ('days', 'weeks', 'months', 'years') -%}
        {{ exceptions.raise_compiler_error("segment_date_add: bad unit " ~ (unit | string)) }}
    {%- endif -%}
    {{ return(adapter.dispatch('segment_date_add', 'segmentation')(date_sql, unit, n_sql)) }}
{%- endmacro %}

{% macro postgres__segment_date_add(date_sql, unit, n_sql) -%}
    cast({{ date_sql }} + make_interval({{ unit }} => {{ n_sql }}) as date)
{%- endmacro %}

{% macro default__segment_date_add(date_sql, unit, n_sql) -%}
    {{ exceptions.raise_compiler_error("segment_date_add: no implementation for adapter '" ~ adapter.type() ~ "' (docs/scaling.md)") }}
{%- endmacro %}

{#- `matches`: x against a regular expression literal (PostgreSQL's ARE dialect; the
    compiler checks patterns with PostgreSQL). -#}
{% macro segment_regex_match(x, pattern_sql) -%}
    {{ return(adapter.dispatch('segment_regex_match', 'segmentation')(x, pattern_sql)) }}
{%- endmacro %}

{% macro postgres__segment_regex_match(x, pattern_sql) -%}
    {{ x }} ~ {{ pattern_sql }}
{%- endmacro %}

{% macro default__segment_regex_match(x, pattern_sql) -%}
    {{ exceptions.raise_compiler_error("segment_regex_match: no implementation for adapter '" ~ adapter.type() ~ "' (docs/scaling.md)") }}
{%- endmacro %}

{#- Array conditions on a text array: `any` (shares an element with the list) or `all`
    (holds every element of it); values_sql is a list of text literals. -#}
{% macro segment_array_has(x, mode, values_sql) -%}
    {%- if mode not in ('any', 'all') -%}
        {{ exceptions.raise_compiler_error("segment_array_has: bad mode " ~ (mode | string)) }}
    {%- endif -%}
    {{ return(adapter.dispatch('segment_array_has', 'segmentation')(x, mode, values_sql)) }}
{%- endmacro %}

{% macro postgres__segment_array_has(x, mode, values_sql) -%}
    {{ x }} {{ '&&' if mode == 'any' else '@>' }} cast(array[{{ values_sql }}] as text [])
{%- endmacro %}

{% macro default__segment_array_has(x, mode, values_sql) -%}
    {{ exceptions.raise_compiler_error("segment_array_has: no implementation for adapter '" ~ adapter.type() ~ "' (docs/scaling.md)") }}
{%- endmacro %}

{#- Text and numbers. `type` is the field type; list and array elements are text. -#}
{% macro segment_op__eq(x, value, type) -%}
    {{ x }} = {{ segment_literal(value, type) }}
{%- endmacro %}

{% macro segment_op__in(x, value, type) -%}
    {{ x }} in ({{ segment_literal_list(value, type) }})
{%- endmacro %}

{% macro segment_op__ieq(x, value, type) -%}
    lower({{ x }}) = lower({{ segment_literal(value, type) }})
{%- endmacro %}

{% macro segment_op__contains(x, value, type) -%}
    strpos({{ x }}, {{ segment_literal(value, type) }}) > 0
{%- endmacro %}

{% macro segment_op__icontains(x, value, type) -%}
    strpos(lower({{ x }}), lower({{ segment_literal(value, type) }})) > 0
{%- endmacro %}

{% macro segment_op__starts_with(x, value, type) -%}
    starts_with({{ x }}, {{ segment_literal(value, type) }})
{%- endmacro %}

{% macro segment_op__ends_with(x, value, type) -%}
    right({{ x }}, length({{ segment_literal(value, type) }})) = {{ segment_literal(value, type) }}
{%- endmacro %}

{#- A POSIX regular expression (checked by the compiler to be valid for PostgreSQL). -#}
{% macro segment_op__matches(x, value, type) -%}
    {{ segment_regex_match(x, segment_literal(value, 'string')) }}
{%- endmacro %}

{% macro segment_op__gt(x, value, type) -%}
    {{ x }} > {{ segment_literal(value, type) }}
{%- endmacro %}

{% macro segment_op__gte(x, value, type) -%}
    {{ x }} >= {{ segment_literal(value, type) }}
{%- endmacro %}

{% macro segment_op__lt(x, value, type) -%}
    {{ x }} < {{ segment_literal(value, type) }}
{%- endmacro %}

{% macro segment_op__lte(x, value, type) -%}
    {{ x }} <= {{ segment_literal(value, type) }}
{%- endmacro %}

{#- Inclusive [low, high]; value is a two-element list. -#}
{% macro segment_op__between(x, value, type) -%}
    {{ x }} between {{ segment_literal(value[0], type) }} and {{ segment_literal(value[1], type) }}
{%- endmacro %}

{#- Dates (timestamps by their local date). -#}
{% macro segment_op__before(x, value, type) -%}
    {{ x }} < {{ segment_literal(value, type) }}
{%- endmacro %}

{% macro segment_op__after(x, value, type) -%}
    {{ x }} > {{ segment_literal(value, type) }}
{%- endmacro %}

{% macro segment_op__on(x, value, type) -%}
    {{ x }} = {{ segment_literal(value, type) }}
{%- endmacro %}

{#- Relative to the as-of date; value is a duration {unit, n}. -#}
{% macro segment_op__within_last(x, value, type) -%}
    {{ x }} between {{ segment_shifted_date('a.as_of_date', value, -1) }} and a.as_of_date
{%- endmacro %}

{% macro segment_op__more_than_ago(x, value, type) -%}
    {{ x }} < {{ segment_shifted_date('a.as_of_date', value, -1) }}
{%- endmacro %}

{% macro segment_op__within_next(x, value, type) -%}
    {{ x }} between a.as_of_date and {{ segment_shifted_date('a.as_of_date', value) }}
{%- endmacro %}

{#- value is a period name of segment_calendar_bounds (this_month, last_week, ...). -#}
{% macro segment_op__in_calendar(x, value, type) -%}
    {%- set bounds = segment_calendar_bounds(value) -%}
    ({{ x }} >= {{ bounds[0] }} and {{ x }} < {{ bounds[1] }})
{%- endmacro %}

{#- The next anniversary on or after the as-of date; a 29 February date has its
    anniversary on 28 February in other years (PostgreSQL's interval arithmetic). -#}
{% macro segment_op__anniversary_within_next(x, value, type) -%}
    {%- set as_of = 'a.as_of_date' -%}
    {%- set years = "cast(extract(year from " ~ as_of ~ ") - extract(year from " ~ x ~ ") as integer)" -%}
    {%- set this_year = segment_date_add(x, 'years', years) -%}
    {%- set next_year = segment_date_add(x, 'years', years ~ " + 1") -%}
    (case when {{ this_year }} >= {{ as_of }} then {{ this_year }} else {{ next_year }} end)
        <= {{ segment_shifted_date(as_of, value) }}
{%- endmacro %}

{#- Booleans: unset is neither true nor false. -#}
{% macro segment_op__is_true(x, value, type) -%}
    {{ x }} is true
{%- endmacro %}

{% macro segment_op__is_false(x, value, type) -%}
    {{ x }} is false
{%- endmacro %}

{#- Arrays (text[]): value is a list of text elements. -#}
{% macro segment_op__contains_any(x, value, type) -%}
    {{ segment_array_has(x, 'any', segment_literal_list(value, 'string')) }}
{%- endmacro %}

{% macro segment_op__contains_all(x, value, type) -%}
    {{ segment_array_has(x, 'all', segment_literal_list(value, 'string')) }}
{%- endmacro %}

{#- Every type: an empty string and an empty array are unset too. -#}
{% macro segment_op__is_set(x, value, type) -%}
    {%- if type == 'string' -%}
        ({{ x }} is not null and {{ x }} <> '')
    {%- elif type == 'array' -%}
        coalesce(cardinality({{ x }}), 0) > 0
    {%- else -%}
        {{ x }} is not null
    {%- endif -%}
{%- endmacro %}

{#- A date shifted by a duration {unit, n} (n may be negated with sign=-1). -#}
{% macro segment_shifted_date(date_sql, duration, sign=1) -%}
    {%- if duration.unit not in ('days', 'weeks', 'months', 'years') -%}
        {{ exceptions.raise_compiler_error("segment_shifted_date: bad unit " ~ (duration.unit | string)) }}
    {%- endif -%}
    {{ segment_date_add(date_sql, duration.unit, (sign | string) ~ " * " ~ segment_literal(duration.n, 'integer')) }}
{%- endmacro %}

{#- [start, end) of a calendar period around the as-of date. Weeks start on Monday. -#}
{% macro segment_calendar_bounds(period) -%}
    {{ return(adapter.dispatch('segment_calendar_bounds', 'segmentation')(period)) }}
{%- endmacro %}

{% macro default__segment_calendar_bounds(period) -%}
    {{ exceptions.raise_compiler_error("segment_calendar_bounds: no implementation for adapter '" ~ adapter.type() ~ "' (docs/scaling.md)") }}
{%- endmacro %}

{% macro postgres__segment_calendar_bounds(period) -%}
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
