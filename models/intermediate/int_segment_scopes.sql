{#- One row per (account_id, segment_key) the definitions declare: templates expanded per
    account after package gating and account overrides. The one template expansion: the
    catalogue, the template segment models and the audit's expected set read it. -#}
{{ segment_scopes_sql(segment_registry()) }}
