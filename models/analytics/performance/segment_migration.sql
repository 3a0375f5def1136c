{#- Migration: per priority group and pair of recorded dates (each date and the recorded
    date before it, and each date and the date var migration_interval_days days earlier when
    that one is recorded), the contacts assigned to from_segment on from_as_of and to
    to_segment on to_as_of, the group's fallback included. '(none)' stands for "in no segment
    of the group": a contact not yet created, deleted, or (in a group without a fallback) in
    none of its segments. The diagonal (from_segment = to_segment) counts those who stayed. -#}
{%- set intervals = var('migration_interval_days', [7, 30]) %}
with

dates as (
    select * from {{ ref('int_analytics_dates') }}
),

pairs as (
    select
        previous_as_of as from_as_of,
        as_of as to_as_of
    from dates
    where previous_as_of is not null
    {%- for days in intervals %}
        union
        select
            earlier.as_of as from_as_of,
            dates.as_of as to_as_of
        from dates
        inner join dates as earlier on dates.as_of - {{ days | int }} = earlier.as_of
    {%- endfor %}
),

assignments as (
    select * from {{ ref('int_group_assignments_by_date') }}
),

-- Each contact assigned on either date of a pair, with its segment on each (one assignment
-- per contact, group and date).
moves as (
    select
        assignments.account_id,
        assignments.group_key,
        assignments.contact_id,
        pairs.from_as_of,
        pairs.to_as_of,
        coalesce(
            max(assignments.segment_key) filter (where assignments.as_of = pairs.from_as_of), '(none)'
        ) as from_segment,
        coalesce(
            max(assignments.segment_key) filter (where assignments.as_of = pairs.to_as_of), '(none)'
        ) as to_segment
    from pairs
    inner join assignments on assignments.as_of in (pairs.from_as_of, pairs.to_as_of)
    group by
        assignments.account_id, assignments.group_key, assignments.contact_id,
        pairs.from_as_of, pairs.to_as_of
),

final as (
    select
        account_id,
        group_key,
        from_as_of,
        to_as_of,
        (to_as_of - from_as_of)::integer as interval_days,
        from_segment,
        to_segment,
        count(*)::integer as contacts
    from moves
    group by account_id, group_key, from_as_of, to_as_of, from_segment, to_segment
)

select * from final
