-- The DAG's schedule (steps.schedule): every account id and the timezone its daily refresh
-- runs in, read from crm_raw so the first run needs no staged data. The cleaning is that of
-- stg_crm__accounts (normalize_id, the pg_timezone_names lookup and its fallback), so the
-- schedule and the as-of dates dbt computes agree.

-- name: account_timezones
with

timezones as (
    select name as timezone_name
    from pg_timezone_names
    where name !~ '^(posix|right)/'
),

cleaned as (
    select
        nullif(
            regexp_replace(
                account_id, '^[[:space:]\u00a0\u200b]+|[[:space:]\u00a0\u200b]+$', '', 'g'
            ),
            ''
        ) as account_id,
        nullif(
            regexp_replace(
                timezone, '^[[:space:]\u00a0\u200b]+|[[:space:]\u00a0\u200b]+$', '', 'g'
            ),
            ''
        ) as timezone_raw,
        _loaded_at
    from {raw}.accounts
),

latest as (
    select distinct on (account_id)
        account_id,
        timezone_raw
    from cleaned
    where account_id is not null
    order by account_id asc, _loaded_at desc
)

select
    latest.account_id,
    coalesce(timezones.timezone_name, %(default_timezone)s) as timezone
from latest
left join timezones
    on lower(timezones.timezone_name) = lower(latest.timezone_raw)
order by latest.account_id
