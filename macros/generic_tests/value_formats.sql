{#- Format checks for normalised values. Each returns the offending rows; NULLs pass
    (not_null says whether NULL is allowed). -#}

{#- E.164 by the address rule (is_e164). -#}
{% test valid_e164(model, column_name) %}
    select {{ column_name }}
    from {{ model }}
    where not {{ is_e164(column_name) }}
{% endtest %}

{#- An email address by the address rule (is_email): lower case, local@domain.tld. -#}
{% test valid_email(model, column_name) %}
    select {{ column_name }}
    from {{ model }}
    where not {{ is_email(column_name) }}
{% endtest %}

{#- Picklist values are lower snake_case. -#}
{% test snake_case(model, column_name) %}
    select {{ column_name }}
    from {{ model }}
    where {{ column_name }} !~ '^[a-z0-9]+(_[a-z0-9]+)*$'
{% endtest %}

{#- Upper-case ISO 3166-1 alpha-2 shape. -#}
{% test valid_country_code(model, column_name) %}
    select {{ column_name }}
    from {{ model }}
    where {{ column_name }} !~ '^[A-Z]{2}$'
{% endtest %}

{#- A name the server's tz database knows (what `at time zone` will accept). -#}
{% test valid_timezone(model, column_name) %}
    select {{ column_name }}
    from {{ model }}
    where {{ column_name }} not in (select tz.name from pg_timezone_names as tz)
{% endtest %}

{#- No element of a text[] column is NULL, blank or not lower-cased and trimmed. -#}
{% test clean_text_array(model, column_name) %}
    select {{ column_name }}
    from {{ model }}
    where exists (
        select 1
        from unnest({{ column_name }}) as element (value)
        where
            element.value is null
            or element.value = ''
            or element.value <> lower(btrim(element.value))
    )
{% endtest %}
