{#- City / province: trimmed, inner whitespace collapsed, initcap
    ('  jakarta  SELATAN' -> 'Jakarta Selatan'); blank -> NULL. -#}
{% macro normalize_place(column) -%}
    initcap({{ normalize_text("regexp_replace(" ~ column ~ ", '[[:space:]\\u00a0\\u200b]+', ' ', 'g')") }})
{%- endmacro %}
