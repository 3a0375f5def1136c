{#- Industry value trends: per account, industry of the contact's primary company and
    calendar month (local dates in the account's timezone), the completed orders up to the
    as-of date and their average and median amount. Contacts without a primary company, or
    whose company has no industry, count under '(none)'. -#}
with

as_of as (
    select as_of_date from {{ ref('int_analytics_as_of') }}
),

accounts as (
    select
        account_id,
        timezone
    from {{ ref('stg_crm__accounts') }}
),

companies as (
    select
        account_id,
        contact_id,
        industry
    from {{ ref('int_segment_primary_companies') }}
),

orders as (
    select
        orders.account_id,
        orders.contact_id,
        orders.amount,
        cast((orders.ordered_at at time zone accounts.timezone) as date) as ordered_on
    from {{ ref('stg_crm__orders') }} as orders
    inner join accounts on orders.account_id = accounts.account_id
    where orders.status = 'completed' and orders.ordered_at is not null and orders.amount is not null
),

final as (
    select
        orders.account_id,
        as_of.as_of_date as as_of,
        coalesce(companies.industry, '(none)') as industry,
        cast(date_trunc('month', orders.ordered_on) as date) as month,  -- noqa: RF04
        cast(count(*) as integer) as orders,
        cast(avg(orders.amount) as numeric) as avg_order_value,
        cast(percentile_cont(0.5) within group (order by orders.amount) as numeric) as median_order_value,
        cast(sum(orders.amount) as numeric) as revenue
    from orders
    inner join as_of on orders.ordered_on <= as_of.as_of_date
    left join companies
        on orders.account_id = companies.account_id and orders.contact_id = companies.contact_id
    group by
        orders.account_id,
        as_of.as_of_date,
        coalesce(companies.industry, '(none)'),
        cast(date_trunc('month', orders.ordered_on) as date)
)

select * from final
