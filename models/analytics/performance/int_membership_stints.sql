{#- The one reconstruction of past membership from the history's changes: one row per
    stint, an unbroken membership of a contact in a segment. A contact is a member on date D
    when a stint has entered_on <= D and (exited_on is null or exited_on > D). Only changes up
    to the as-of date count, so a stint still open then has exited_on NULL. Changes alternate
    per contact and segment (record_history writes 'entered' only for non-members and
    'exited' only for members), so each 'entered' row opens a stint and the next row closes it.
-#}
with

as_of as (
    select as_of_date from {{ ref('int_analytics_as_of') }}
),

changes as (
    select
        changes.account_id,
        changes.segment_key,
        changes.contact_id,
        changes.as_of,
        changes.change,
        lead(changes.as_of) over contact_segment as next_as_of,
        lead(changes.change) over contact_segment as next_change
    from {{ source('segments_history', 'membership_changes') }} as changes
    inner join as_of on changes.as_of <= as_of.as_of_date
    window contact_segment as (
        partition by changes.account_id, changes.segment_key, changes.contact_id
        order by changes.as_of
    )
),

final as (
    select
        account_id,
        segment_key,
        contact_id,
        as_of as entered_on,
        case when next_change = 'exited' then next_as_of end as exited_on,
        case when next_change = 'exited' then next_as_of - as_of end as stint_days
    from changes
    where change = 'entered'
)

select * from final
