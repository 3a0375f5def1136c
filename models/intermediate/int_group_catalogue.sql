{#- One row per (account, priority group) from segment_defs/<account>/_groups/*.yml and the
    template groups of segment_defs/_all/_groups/ (expanded by int_group_entries), for
    accounts that exist: the segments in priority order (first match wins) and the
    fallback label. segment_group_assignments applies them. -#}
with

entries as (
    select * from {{ ref('int_group_entries') }}
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
    group by entries.account_id, entries.group_key
)

select * from final
