{#- SQL literals for values that came from segment YAML. Every value is treated as
    untrusted data: strings are single-quoted with quotes doubled (PostgreSQL's
    standard_conforming_strings, on by default, keeps backslashes literal), numbers and
    dates are checked against a strict pattern before they are emitted, and anything else
    stops the compile. -#}
{% macro segment_literal(value, type) -%}
    {%- if type in ('string', 'array') -%}
        {%- if value is not string -%}
            {{ exceptions.raise_compiler_error("segment_literal: expected a string, got " ~ (value | string)) }}
        {%- endif -%}
        '{{ value | replace("'", "''") }}'
    {%- elif type == 'number' -%}
        {%- set text = value | string -%}
        {%- if not modules.re.fullmatch('^-?[0-9]+(\\.[0-9]+)?$', text) -%}
            {{ exceptions.raise_compiler_error("segment_literal: not a number: " ~ text) }}
        {%- endif -%}
        cast('{{ text }}' as numeric)
    {%- elif type in ('date', 'timestamp') -%}
        {%- set text = value | string -%}
        {%- if not modules.re.fullmatch('^[0-9]{4}-[0-9]{2}-[0-9]{2}$', text) -%}
            {{ exceptions.raise_compiler_error("segment_literal: not a date: " ~ text) }}
        {%- endif -%}
        cast('{{ text }}' as date)
    {%- elif type == 'integer' -%}
        {%- if value is not number or value is boolean or (value | int) != value -%}
            {{ exceptions.raise_compiler_error("segment_literal: not an integer: " ~ (value | string)) }}
        {%- endif -%}
        {{ value | int }}
    {%- elif type == 'boolean' -%}
        {%- if value is not boolean -%}
            {{ exceptions.raise_compiler_error("segment_literal: not a boolean: " ~ (value | string)) }}
        {%- endif -%}
        {{ 'true' if value else 'false' }}
    {%- else -%}
        {{ exceptions.raise_compiler_error("segment_literal: unknown type " ~ (type | string)) }}
    {%- endif -%}
{%- endmacro %}

{#- A list of literals, comma-separated (for `in (...)` and `array[...]`). -#}
{% macro segment_literal_list(values, type) -%}
    {%- if values is string or values is not iterable or values | length == 0 -%}
        {{ exceptions.raise_compiler_error("segment_literal_list: expected a non-empty list") }}
    {%- endif -%}
    {%- for value in values -%}
        {{ segment_literal(value, type) }}{{ ", " if not loop.last }}
    {%- endfor -%}
{%- endmacro %}

{#- A column identifier from the field catalogue, checked again and quoted. -#}
{% macro segment_identifier(name) -%}
    {%- if name is not string or not modules.re.fullmatch('^[a-z_][a-z0-9_]{0,62}$', name) -%}
        {{ exceptions.raise_compiler_error("segment_identifier: not a catalogue column: " ~ (name | string)) }}
    {%- endif -%}
    {{ adapter.quote(name) }}
{%- endmacro %}
