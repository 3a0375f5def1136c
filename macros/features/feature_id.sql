{#- A feature column name: f_ and 12 hex digits, as features.py derives it. -#}
{% macro feature_id(name) -%}
    {%- if not modules.re.fullmatch('f_[0-9a-f]{12}', name | string) -%}
        {{ exceptions.raise_compiler_error('feature_id: not a feature id: ' ~ (name | string)) }}
    {%- endif -%}
    {{ name }}
{%- endmacro %}
