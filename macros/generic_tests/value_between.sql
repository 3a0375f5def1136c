{#- Every non-NULL value of the column lies in [min_value, max_value] (shares 0..1, counts
    >= 0). NULLs pass: not_null decides those. -#}
{% test value_between(model, column_name, min_value, max_value) %}
    select {{ column_name }}
    from {{ model }}
    where {{ column_name }} < {{ min_value | float }} or {{ column_name }} > {{ max_value | float }}
{% endtest %}
