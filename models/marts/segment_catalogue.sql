{#- One row per (account_id, segment_key) definition, enabled or not, with the
    definition_hash of its logic; templates appear once per account they apply to. -#}
{{ segment_catalogue_sql(segment_registry()) }}
