{#- Stability: per account, segment and recorded date D, the share of D's members still
    members (without a break) at D+1, D+7 and D+30 (NULL unless that date is recorded and
    not after the as-of date), the churn (exits on D over the members on the previous
    recorded date), and the mean and median length of the stints completed by D. -#}
with

flow as (
    select * from {{ ref('segment_daily_flow') }}
),

dates as (
    select * from {{ ref('int_analytics_dates') }}
),

stints as (
    select * from {{ ref('int_membership_stints') }}
),

horizons as (
    select
        flow.account_id,
        flow.segment_key,
        flow.as_of,
        horizon.days,
        later.as_of as later_as_of
    from flow
    cross join (values (1), (7), (30)) as horizon (days)
    left join dates as later on flow.as_of + horizon.days = later.as_of
),

-- D's members whose stint still runs on D+n: entered by D, not exited by D+n.
retained as (
    select
        horizons.account_id,
        horizons.segment_key,
        horizons.as_of,
        horizons.days,
        count(stints.contact_id) as contacts
    from horizons
    left join stints
        on
            horizons.account_id = stints.account_id
            and horizons.segment_key = stints.segment_key
            and horizons.as_of >= stints.entered_on
            and (stints.exited_on is null or horizons.later_as_of < stints.exited_on)
    where horizons.later_as_of is not null
    group by horizons.account_id, horizons.segment_key, horizons.as_of, horizons.days
),

completed as (
    select
        flow.account_id,
        flow.segment_key,
        flow.as_of,
        count(stints.stint_days) as completed_stints,
        avg(stints.stint_days)::numeric as mean_stint_days,
        percentile_cont(0.5) within group (order by stints.stint_days)::numeric
            as median_stint_days
    from flow
    inner join stints
        on
            flow.account_id = stints.account_id
            and flow.segment_key = stints.segment_key
            and flow.as_of >= stints.exited_on
    group by flow.account_id, flow.segment_key, flow.as_of
),

final as (
    select
        flow.account_id,
        flow.segment_key,
        flow.as_of,
        flow.members,
        {%- for days in (1, 7, 30) %}
            (
                select retained.contacts::numeric / nullif(flow.members, 0)
                from retained
                where
                    retained.account_id = flow.account_id
                    and retained.segment_key = flow.segment_key
                    and retained.as_of = flow.as_of
                    and retained.days = {{ days }}
            ) as retained_{{ days }}d,
        {%- endfor %}
        flow.exited::numeric / nullif(previous.members, 0) as churn_rate,
        coalesce(completed.completed_stints, 0)::integer as completed_stints,
        completed.mean_stint_days,
        completed.median_stint_days
    from flow
    inner join dates on flow.as_of = dates.as_of
    left join flow as previous
        on
            flow.account_id = previous.account_id
            and flow.segment_key = previous.segment_key
            and dates.previous_as_of = previous.as_of
    left join completed
        on
            flow.account_id = completed.account_id
            and flow.segment_key = completed.segment_key
            and flow.as_of = completed.as_of
)

select * from final
