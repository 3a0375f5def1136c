{#- Each account's as-of date for this run (see macro segment_as_of_date_sql), for the run's
    accounts only (vars accounts / excluded_accounts, macro segment_run_accounts_sql): every
    segment model joins it, so none yields members of another account. -#}
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
    where {{ segment_run_accounts_sql('account_id') }}
)

select * from final
