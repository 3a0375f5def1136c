{#- The address rules: is the expression a valid E.164 phone / email address? Each rule is
    defined once, as var `address_rules` in dbt_project.yml, which publish and the audit read
    too (segmentation.settings.address_rules). NULL in, NULL out. -#}
{% macro is_e164(expression) -%}
    ({{ expression }} ~ {{ address_rule('e164') }})
{%- endmacro %}

{% macro is_email(expression) -%}
    ({{ expression }} ~ {{ address_rule('email') }})
{%- endmacro %}

{#- The rule's regular expression as a SQL string literal. -#}
{% macro address_rule(name) -%}
    '{{ var('address_rules')[name] | replace("'", "''") }}'
{%- endmacro %}
