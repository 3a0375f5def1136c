{#- Time before moving: per priority group and (from_segment, to_segment) with
    from_segment <> to_segment, the moves between consecutive recorded dates up to the
    as-of date and the days the contact had been assigned to from_segment when it moved:
    the move's date minus the first date of its unbroken run in from_segment. A run that
    starts on the first recorded date began no later than that, so its days are a lower
    bound. to_segment '(none)': the contact left the group's segments (and it has no
    fallback) or was deleted. -#}
with

dates as (
    select * from {{ ref('int_analytics_dates') }}
),

assignments as (
    select
        assignments.account_id,
        assignments.group_key,
        assignments.contact_id,
        assignments.segment_key,
        assignments.as_of,
        dates.date_index,
        -- consecutive recorded dates in the same segment share an island
        dates.date_index - row_number() over (
            partition by
                assignments.account_id, assignments.group_key, assignments.contact_id,
                assignments.segment_key
            order by assignments.as_of
        ) as island
    from {{ ref('int_group_assignments_by_date') }} as assignments
    inner join dates on assignments.as_of = dates.as_of
),

runs as (
    select
        account_id,
        group_key,
        contact_id,
        segment_key,
        min(as_of) as started_on,
        max(date_index) as last_index
    from assignments
    group by account_id, group_key, contact_id, segment_key, island
),

moves as (
    select
        runs.account_id,
        runs.group_key,
        runs.segment_key as from_segment,
        coalesce(next_assignment.segment_key, '(none)') as to_segment,
        next_date.as_of - runs.started_on as days_before_move
    from runs
    inner join dates as next_date on runs.last_index + 1 = next_date.date_index
    left join assignments as next_assignment
        on
            runs.account_id = next_assignment.account_id
            and runs.group_key = next_assignment.group_key
            and runs.contact_id = next_assignment.contact_id
            and next_date.as_of = next_assignment.as_of
),

final as (
    select
        moves.account_id,
        as_of.as_of_date as as_of,
        moves.group_key,
        moves.from_segment,
        moves.to_segment,
        count(*)::integer as moves,
        avg(moves.days_before_move)::numeric as mean_days_before_move,
        percentile_cont(0.5) within group (order by moves.days_before_move)::numeric
            as median_days_before_move
    from moves
    cross join {{ ref('int_analytics_as_of') }} as as_of
    group by moves.account_id, as_of.as_of_date, moves.group_key, moves.from_segment, moves.to_segment
)

select * from final
