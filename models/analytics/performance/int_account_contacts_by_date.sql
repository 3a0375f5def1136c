{#- The contacts of each account on each recorded date up to the as-of date: live staged
    contacts created by that date (local date in the account's timezone), plus any contact
    history shows as a member that day (a contact deleted since). The population of the
    account-level KPIs, the denominator of share_of_contacts and the candidates for a
    group's fallback. -#}
with

dates as (
    select as_of from {{ ref('int_analytics_dates') }}
),

accounts as (
    select
        account_id,
        timezone
    from {{ ref('stg_crm__accounts') }}
),

contacts as (
    select
        contacts.account_id,
        contacts.contact_id,
        cast((contacts.created_at at time zone accounts.timezone) as date) as created_on
    from {{ ref('stg_crm__contacts') }} as contacts
    inner join accounts on contacts.account_id = accounts.account_id
),

live as (
    select
        contacts.account_id,
        contacts.contact_id,
        dates.as_of
    from contacts
    inner join dates on contacts.created_on is null or contacts.created_on <= dates.as_of
),

final as (
    select
        account_id,
        contact_id,
        as_of
    from live
    union
    select
        account_id,
        contact_id,
        as_of
    from {{ ref('int_segment_members_by_date') }}
)

select * from final
