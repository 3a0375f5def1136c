{#- Members of each segment on each recorded date up to the as-of date, from the stints
    (int_membership_stints): one row per (account, segment, contact, recorded date). -#}
with

stints as (
    select * from {{ ref('int_membership_stints') }}
),

dates as (
    select as_of from {{ ref('int_analytics_dates') }}
),

final as (
    select
        stints.account_id,
        stints.segment_key,
        stints.contact_id,
        dates.as_of
    from stints
    inner join dates
        on
            stints.entered_on <= dates.as_of
            and (stints.exited_on is null or stints.exited_on > dates.as_of)
)

select * from final
