{#- E.164 ('+6281234567890') or NULL.

    Indonesian local formats get +62: a leading 0 (trunk prefix, '0812-...', '(021) ...'),
    a bare '62...' and a bare mobile '8...'. '+<cc>...' and '00<cc>...' keep their country
    code; a stray trunk 0 after +62 ('+62 0812...') is dropped. Anything containing letters
    (extensions, notes) or not E.164 by the address rule (is_e164: 8-15 digits) is NULL rather
    than guessed. -#}
{% macro normalize_phone(column, default_country_code='62') -%}
    {%- if default_country_code is not string or not modules.re.match('^[1-9][0-9]{0,2}$', default_country_code) -%}
        {{ exceptions.raise_compiler_error("normalize_phone: default_country_code must be 1-3 digits, got " ~ default_country_code) }}
    {%- endif -%}
    {%- set digits -%}
        regexp_replace({{ column }}, '[^0-9]', '', 'g')
    {%- endset -%}
    {%- set candidate -%}
        (case
            when {{ column }} ~ '[^0-9+()./[:space:]\u00a0-]' then null
            when btrim({{ column }}) ~ '^\+'
                then '+' || regexp_replace({{ digits }}, '^{{ default_country_code }}0', '{{ default_country_code }}')
            when {{ digits }} ~ '^00' then '+' || substr({{ digits }}, 3)
            when {{ digits }} ~ '^{{ default_country_code }}'
                then '+' || regexp_replace({{ digits }}, '^{{ default_country_code }}0', '{{ default_country_code }}')
            when {{ digits }} ~ '^0' then '+{{ default_country_code }}' || substr({{ digits }}, 2)
            when {{ digits }} ~ '^8' then '+{{ default_country_code }}' || {{ digits }}
        end)
    {%- endset -%}
    (case when {{ is_e164(candidate) }} then {{ candidate }} end)
{%- endmacro %}
