{#- One row per (account_id, segment_key, contact_id): the union of the generated segment
    models listed in the registry that `segments compile` writes. -#}
{{ segment_membership_sql(segment_registry()) }}
