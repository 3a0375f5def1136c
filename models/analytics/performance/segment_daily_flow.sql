{#- Size and flow: per account, segment and recorded date up to the as-of date, the members
    that day and the contacts that entered and exited it since the previous recorded date. -#}
with

dates as (
    select as_of from {{ ref('int_analytics_dates') }}
),

sizes as (
    select
        sizes.account_id,
        sizes.segment_key,
        sizes.as_of
    from {{ source('segments_history', 'segment_sizes') }} as sizes
    inner join dates on sizes.as_of = dates.as_of
),

changes as (
    select
        changes.account_id,
        changes.segment_key,
        changes.as_of,
        count(*) filter (where changes.change = 'entered') as entered,
        count(*) filter (where changes.change = 'exited') as exited
    from {{ source('segments_history', 'membership_changes') }} as changes
    inner join dates on changes.as_of = dates.as_of
    group by changes.account_id, changes.segment_key, changes.as_of
),

members as (
    select
        account_id,
        segment_key,
        as_of,
        count(*) as members
    from {{ ref('int_segment_members_by_date') }}
    group by account_id, segment_key, as_of
),

-- A published segment has a size row each recorded date; a removed segment's last exits
-- have changes but no size row.
keys as (
    select
        account_id,
        segment_key,
        as_of
    from sizes
    union
    select
        account_id,
        segment_key,
        as_of
    from changes
),

final as (
    select
        keys.account_id,
        keys.segment_key,
        keys.as_of,
        coalesce(members.members, 0)::integer as members,
        coalesce(changes.entered, 0)::integer as entered,
        coalesce(changes.exited, 0)::integer as exited,
        (coalesce(changes.entered, 0) - coalesce(changes.exited, 0))::integer as net_change
    from keys
    left join members
        on
            keys.account_id = members.account_id
            and keys.segment_key = members.segment_key
            and keys.as_of = members.as_of
    left join changes
        on
            keys.account_id = changes.account_id
            and keys.segment_key = changes.segment_key
            and keys.as_of = changes.as_of
)

select * from final
