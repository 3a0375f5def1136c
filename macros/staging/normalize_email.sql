{#- Lower-cased, every whitespace character removed; NULL unless it looks like
    local@domain.tld. Deliberately stricter than RFC 5322: an address Broadcast
    cannot send to is worth less than a NULL the segment author can see. -#}
{% macro normalize_email(column) -%}
    {%- set compact -%}
        regexp_replace(lower({{ column }}), '[[:space:]\u00a0\u200b]+', '', 'g')
    {%- endset -%}
    (case
        when {{ compact }} ~ '^[a-z0-9._%+''-]+@[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*\.[a-z]{2,}$'
            and {{ compact }} !~ '(^\.|\.\.|\.@)'
            then {{ compact }}
    end)
{%- endmacro %}
