{#- One row per (account, priority group) from segment_defs/<account>/_groups/*.yml, for
    accounts that exist: the segments in priority order (first match wins) and the
    fallback label. segment_group_assignments applies them. -#}
with

accounts as (
    select account_id from {{ ref('stg_crm__accounts') }}
),

entries as (
    {{ segment_group_rows_sql(segment_group_registry()) | indent(4) }}
),

final as (
    select
        entries.account_id,
        entries.group_key,
        min(entries.group_name) as group_name,
        -- every group is exclusive; the audit reads this column by this name
        true as exclusive,  -- noqa: RF04
        array_agg(entries.segment_key order by entries.priority) filter (
            where not entries.is_fallback
        ) as segment_keys,
        min(entries.segment_key) filter (where entries.is_fallback) as fallback,
        min(entries.definition_hash) as definition_hash,
        min(entries.source_file) as source_file
    from entries
    inner join accounts on entries.account_id = accounts.account_id
    group by entries.account_id, entries.group_key
)

select * from final
