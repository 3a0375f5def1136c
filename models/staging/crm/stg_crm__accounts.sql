with

source as (
    select * from {{ source('crm', 'accounts') }}
),

-- pg_timezone_names is the server's tz database: a name it knows is one every
-- downstream conversion (at time zone) accepts. posix/ and right/ are aliases we do not
-- want to hand out.
timezones as (
    select name as timezone_name
    from pg_timezone_names
    where name !~ '^(posix|right)/'
),

renamed as (
    select
        {{ normalize_id('source.account_id') }} as account_id,
        {{ normalize_text('source.name') }} as account_name,
        {{ normalize_picklist('source.package') }} as package,
        -- An unknown zone falls back so the run goes on, but loudly: timezone_is_valid,
        -- the raw value, a warn test and a row in int_crm__rejected_rows.
        coalesce(timezones.timezone_name, '{{ var("default_timezone") }}') as timezone,
        timezones.timezone_name is not null as timezone_is_valid,
        {{ normalize_text('source.timezone') }} as timezone_raw,
        source._loaded_at,
        {{ crm_row_hash('source') }} as _row_hash
    from source
    left join timezones
        on lower(timezones.timezone_name) = lower({{ normalize_text('source.timezone') }})
),

latest as (
    {{ latest_per_key('renamed', 'accounts') }}
),

kept as (
    select latest.*
    from latest
    where {{ crm_keep_row('accounts', 'latest') }}
),

final as (
    select
        account_id,
        account_name,
        package,
        timezone,
        timezone_is_valid,
        timezone_raw
    from kept
)

select * from final
