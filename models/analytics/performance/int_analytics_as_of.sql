{#- The as-of date of the analytics marts: var as_of when set (validated like the segment
    models' as-of), else the latest recorded history date. Every mart reads only history up
    to this date and CRM activity up to its end, so rebuilding a past date gives that date's
    view again. -#}
with

recorded as (
    select max(as_of) as latest_recorded
    from {{ source('segments_history', 'recorded_dates') }}
),

final as (
    select
        {%- if var('as_of', none) is not none and (var('as_of') | string | trim) != '' %}
            {{ segment_as_of_date_sql("'UTC'") }} as as_of_date
        {%- else %}
            latest_recorded as as_of_date
        {%- endif %}
    from recorded
)

select * from final
