{#- Each priority group's assignment on each recorded date up to the as-of date, re-applied
    to the reconstructed membership (int_segment_members_by_date) with the group's current
    order (int_group_catalogue): the first segment of the order the contact is a member of,
    else the group's fallback for every other contact of the account that day. The same rule
    as segment_group_assignments, which applies it to the candidate membership of one date. -#}
with

groups_catalogue as (
    select * from {{ ref('int_group_catalogue') }}
),

entries as (
    select
        groups_catalogue.account_id,
        groups_catalogue.group_key,
        entry.segment_key,
        entry.priority
    from groups_catalogue
    cross join lateral unnest(groups_catalogue.segment_keys) with ordinality as entry (segment_key, priority)
),

matches as (
    select
        entries.account_id,
        entries.group_key,
        members.contact_id,
        members.as_of,
        entries.segment_key,
        row_number() over (
            partition by entries.account_id, entries.group_key, members.contact_id, members.as_of
            order by entries.priority
        ) as match_rank
    from entries
    inner join {{ ref('int_segment_members_by_date') }} as members
        on
            entries.account_id = members.account_id
            and entries.segment_key = members.segment_key
),

winners as (
    select
        account_id,
        group_key,
        contact_id,
        as_of,
        segment_key,
        false as is_fallback
    from matches
    where match_rank = 1
),

fallbacks as (
    select
        groups_catalogue.account_id,
        groups_catalogue.group_key,
        contacts.contact_id,
        contacts.as_of,
        groups_catalogue.fallback as segment_key,
        true as is_fallback
    from groups_catalogue
    inner join {{ ref('int_account_contacts_by_date') }} as contacts
        on groups_catalogue.account_id = contacts.account_id
    where
        groups_catalogue.fallback is not null
        and not exists (
            select 1
            from winners
            where
                winners.account_id = groups_catalogue.account_id
                and winners.group_key = groups_catalogue.group_key
                and winners.contact_id = contacts.contact_id
                and winners.as_of = contacts.as_of
        )
),

final as (
    select * from winners
    union all
    select * from fallbacks
)

select * from final
