{#- Lower-cased, every whitespace character removed; NULL unless the address rule
    (is_email: local@domain.tld) accepts it. Deliberately stricter than RFC 5322: an address Broadcast
    cannot send to is worth less than a NULL the segment author can see. -#}
{% macro normalize_email(column) -%}
    {%- set compact -%}
        regexp_replace(lower({{ column }}), '[[:space:]\u00a0\u200b]+', '', 'g')
    {%- endset -%}
    (case when {{ is_email(compact) }} then {{ compact }} end)
{%- endmacro %}
