{#- Fails (or, with severity warn, warns) with the number of rows in the model: used on
    audit models such as int_crm__rejected_rows so every run prints the counts. Narrow it
    with `config: where:`. -#}
{% test has_no_rows(model) %}
    select *
    from {{ model }}
{% endtest %}
