{#- One row per (account, group, contact): the first segment in the group's order the
    contact is a member of, else the group's fallback label (when it has one). -#}
with

groups_catalogue as (
    select * from {{ ref('int_group_catalogue') }}
),

-- One row per (account, group, entry) of the groups that exist: priority 1 wins.
group_entries as (
    select entries.*
    from {{ ref('int_group_entries') }} as entries
    inner join groups_catalogue
        on
            entries.account_id = groups_catalogue.account_id
            and entries.group_key = groups_catalogue.group_key
),

membership as (
    select * from {{ ref('segment_memberships') }}
),

as_of as (
    select * from {{ ref('int_segment_as_of') }}
),

-- Like segment members, contacts created after the as-of date are not assigned.
contacts as (
    select contacts.*
    from {{ ref('stg_crm__contacts') }} as contacts
    inner join as_of on contacts.account_id = as_of.account_id
    where
        contacts.created_at is null
        or cast((contacts.created_at at time zone as_of.timezone) as date) <= as_of.as_of_date
),

matches as (
    select
        group_entries.account_id,
        group_entries.group_key,
        membership.contact_id,
        group_entries.segment_key,
        group_entries.priority,
        row_number() over (
            partition by group_entries.account_id, group_entries.group_key, membership.contact_id
            order by group_entries.priority
        ) as match_rank
    from group_entries
    inner join membership
        on
            group_entries.account_id = membership.account_id
            and group_entries.segment_key = membership.segment_key
    where not group_entries.is_fallback
),

winners as (
    select
        account_id,
        group_key,
        contact_id,
        segment_key,
        priority,
        false as is_fallback
    from matches
    where match_rank = 1
),

fallbacks as (
    select
        group_entries.account_id,
        group_entries.group_key,
        contacts.contact_id,
        group_entries.segment_key,
        group_entries.priority,
        true as is_fallback
    from group_entries
    inner join contacts on group_entries.account_id = contacts.account_id
    where
        group_entries.is_fallback
        and not exists (
            select 1
            from winners
            where
                winners.account_id = group_entries.account_id
                and winners.group_key = group_entries.group_key
                and winners.contact_id = contacts.contact_id
        )
),

final as (
    select * from winners
    union all
    select * from fallbacks
)

select * from final
