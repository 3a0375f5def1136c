{#- One row per (account_id, segment_key) definition, enabled or not, with the
    definition_hash of its logic: the rows of int_segment_scopes (templates once per account
    they apply to) with each definition's catalogue columns. -#}
{{ segment_catalogue_sql(segment_registry()) }}
