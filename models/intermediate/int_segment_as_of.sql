{#- Each account's as-of date for this run (see macro segment_as_of_date_sql). -#}
with

accounts as (
    select * from {{ ref('stg_crm__accounts') }}
),

final as (
    select
        account_id,
        timezone,
        {{ segment_as_of_date_sql('timezone') }} as as_of_date
    from accounts
)

select * from final
