{#- Like `relationships`, but the parent must belong to the same account: a tenant's row
    pointing at another tenant's record fails, even though the ID exists. NULLs pass. -#}
{% test relationships_within_account(model, column_name, to, field, account_column='account_id') %}
    select
        child.{{ account_column }},
        child.{{ column_name }}
    from {{ model }} as child
    where
        child.{{ column_name }} is not null
        and not exists (
            select 1
            from {{ to }} as parent
            where
                parent.{{ account_column }} = child.{{ account_column }}
                and parent.{{ field }} = child.{{ column_name }}
        )
{% endtest %}
