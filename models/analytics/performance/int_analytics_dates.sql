{#- The recorded history dates up to the as-of date, with each one's predecessor: the dates
    every history-based mart has rows for. -#}
with

as_of as (
    select as_of_date from {{ ref('int_analytics_as_of') }}
),

recorded as (
    -- recorded_dates has a row per account and date; the marts span the accounts' dates.
    select distinct recorded_dates.as_of
    from {{ source('segments_history', 'recorded_dates') }} as recorded_dates
    inner join as_of on recorded_dates.as_of <= as_of.as_of_date
),

final as (
    select
        as_of,
        lag(as_of) over (order by as_of) as previous_as_of,
        row_number() over (order by as_of) as date_index
    from recorded
)

select * from final
