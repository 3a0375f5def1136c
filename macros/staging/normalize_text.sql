{#- Text cleaning shared by every staging model. Raw values are untrusted: these macros
    only ever wrap a column expression, they never interpolate data. -#}

{#- Trimmed text; blank (any mix of whitespace, incl. non-breaking) becomes NULL. -#}
{% macro normalize_text(column) -%}
    nullif(regexp_replace({{ column }}, '^[[:space:]\u00a0\u200b]+|[[:space:]\u00a0\u200b]+$', '', 'g'), '')
{%- endmacro %}

{#- IDs are compared verbatim apart from surrounding whitespace: an ELT that pads
    ' c1' must still join to 'c1'. -#}
{% macro normalize_id(column) -%}
    {{ normalize_text(column) }}
{%- endmacro %}

{#- ISO 4217 code (three letters, upper case) or NULL. -#}
{% macro normalize_currency(column) -%}
    (case
        when upper({{ normalize_text(column) }}) ~ '^[A-Z]{3}$'
            then upper({{ normalize_text(column) }})
    end)
{%- endmacro %}
