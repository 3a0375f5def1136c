{#- One row per (account, priority group, entry) after template expansion: the one place
    groups are expanded per account, as int_segment_scopes is for segments. A group under
    segment_defs/<account>/_groups/ applies to its account; a template group
    (segment_defs/_all/_groups/, account '*') to every account that has no group of the same
    key of its own. int_group_catalogue and segment_group_assignments read it. -#}
with

accounts as (
    select account_id from {{ ref('stg_crm__accounts') }}
),

registry as (
    {{ segment_group_rows_sql(segment_group_registry()) | indent(4) }}
),

own_groups as (
    select distinct
        account_id,
        group_key
    from registry
    where account_id <> '*'
),

final as (
    select
        accounts.account_id,
        registry.group_key,
        registry.group_name,
        registry.priority,
        registry.segment_key,
        registry.is_fallback,
        registry.definition_hash,
        registry.source_file,
        registry.account_id = '*' as from_template
    from registry
    inner join accounts
        on
            registry.account_id = accounts.account_id
            or (
                registry.account_id = '*'
                and not exists (
                    select 1
                    from own_groups
                    where
                        own_groups.account_id = accounts.account_id
                        and own_groups.group_key = registry.group_key
                )
            )
)

select * from final
