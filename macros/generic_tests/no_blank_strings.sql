{#- Staging turns blank text into NULL: no text column of the model holds '' or only
    whitespace. Columns are read from the database, so new columns are covered too. -#}
{% test no_blank_strings(model) %}
    {%- set text_columns = [] %}
    {%- if execute %}
        {%- for column in adapter.get_columns_in_relation(model) %}
            {%- if column.is_string() %}
                {%- do text_columns.append(column.name) %}
            {%- endif %}
        {%- endfor %}
    {%- endif %}
    {%- if text_columns %}
        {%- for column in text_columns %}
    select '{{ column }}' as column_name
    from {{ model }}
    where btrim({{ adapter.quote(column) }}) = ''
            {%- if not loop.last %}
    union all
            {%- endif %}
        {%- endfor %}
    {%- else %}
    select null as column_name
    where false
    {%- endif %}
{% endtest %}
