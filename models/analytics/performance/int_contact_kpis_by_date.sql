{#- Per contact of an account and recorded date D (int_account_contacts_by_date), what the
    KPIs add up. Activity dates are local dates in the account's timezone; nothing after the
    as-of date counts, so a rebuild of a past date sees what that date's run saw.
    - revenue: completed orders (ordered_at) plus won deals (closed_at) in the trailing
      window (D - var arpu_window_days, D];
    - bought_after: a completed order or won deal in (D, D + var retention_window_days];
      NULL while that window runs past the as-of date. bought_after_to_date: the same over
      the part of the window up to the as-of date (NULL on the as-of date itself);
    - campaigns: the contact's campaigns sent in (D - var campaign_window_days, D] with any
      event for the contact, and how many of them had a delivered / read / clicked / replied
      event;
    - open_tickets: tickets created by D and not resolved by D (an unresolved one without a
      resolution time counts while its status is open or pending). -#}
{%- set arpu_days = var('arpu_window_days', 90) | int %}
{%- set retention_days = var('retention_window_days', 30) | int %}
{%- set campaign_days = var('campaign_window_days', 30) | int %}
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

contacts as (
    select * from {{ ref('int_account_contacts_by_date') }}
),

purchases as (
    select
        orders.account_id,
        orders.contact_id,
        cast((orders.ordered_at at time zone accounts.timezone) as date) as bought_on,
        orders.amount
    from {{ ref('stg_crm__orders') }} as orders
    inner join accounts on orders.account_id = accounts.account_id
    where orders.status = 'completed' and orders.ordered_at is not null
    union all
    select
        deals.account_id,
        deals.contact_id,
        cast((deals.closed_at at time zone accounts.timezone) as date) as bought_on,
        deals.amount
    from {{ ref('stg_crm__deals') }} as deals
    inner join accounts on deals.account_id = accounts.account_id
    where deals.status = 'won' and deals.closed_at is not null and deals.contact_id is not null
),

daily_purchases as (
    select
        purchases.account_id,
        purchases.contact_id,
        purchases.bought_on,
        sum(coalesce(purchases.amount, 0)) as amount
    from purchases
    inner join as_of on purchases.bought_on <= as_of.as_of_date
    group by purchases.account_id, purchases.contact_id, purchases.bought_on
),

revenue as (
    select
        contacts.account_id,
        contacts.contact_id,
        contacts.as_of,
        sum(daily_purchases.amount) filter (
            where daily_purchases.bought_on > contacts.as_of - {{ arpu_days }}
            and daily_purchases.bought_on <= contacts.as_of
        ) as revenue,
        count(*) filter (
            where daily_purchases.bought_on > contacts.as_of
            and daily_purchases.bought_on <= contacts.as_of + {{ retention_days }}
        ) as purchases_after
    from contacts
    inner join daily_purchases
        on
            contacts.account_id = daily_purchases.account_id
            and contacts.contact_id = daily_purchases.contact_id
            and daily_purchases.bought_on > contacts.as_of - {{ arpu_days }}
            and daily_purchases.bought_on <= contacts.as_of + {{ retention_days }}
    group by contacts.account_id, contacts.contact_id, contacts.as_of
),

campaign_events as (
    select
        events.account_id,
        events.contact_id,
        events.campaign_id,
        cast((campaigns.sent_at at time zone accounts.timezone) as date) as sent_on,
        bool_or(events.event_type = 'delivered') as delivered,
        bool_or(events.event_type = 'read') as was_read,
        bool_or(events.event_type = 'clicked') as clicked,
        bool_or(events.event_type = 'replied') as replied
    from {{ ref('stg_crm__campaign_events') }} as events
    inner join {{ ref('stg_crm__campaigns') }} as campaigns
        on
            events.account_id = campaigns.account_id
            and events.campaign_id = campaigns.campaign_id
    inner join accounts on events.account_id = accounts.account_id
    inner join as_of
        on cast((events.occurred_at at time zone accounts.timezone) as date) <= as_of.as_of_date
    where campaigns.sent_at is not null
    group by events.account_id, events.contact_id, events.campaign_id, campaigns.sent_at, accounts.timezone
),

campaigns as (
    select
        contacts.account_id,
        contacts.contact_id,
        contacts.as_of,
        count(*) as campaigns,
        count(*) filter (where campaign_events.delivered) as delivered,
        count(*) filter (where campaign_events.was_read) as was_read,
        count(*) filter (where campaign_events.clicked) as clicked,
        count(*) filter (where campaign_events.replied) as replied
    from contacts
    inner join campaign_events
        on
            contacts.account_id = campaign_events.account_id
            and contacts.contact_id = campaign_events.contact_id
            and campaign_events.sent_on > contacts.as_of - {{ campaign_days }}
            and contacts.as_of >= campaign_events.sent_on
    group by contacts.account_id, contacts.contact_id, contacts.as_of
),

tickets as (
    select
        tickets.account_id,
        tickets.contact_id,
        cast((tickets.created_at at time zone accounts.timezone) as date) as created_on,
        cast((tickets.resolved_at at time zone accounts.timezone) as date) as resolved_on,
        tickets.status
    from {{ ref('stg_crm__tickets') }} as tickets
    inner join accounts on tickets.account_id = accounts.account_id
    where tickets.created_at is not null
),

open_tickets as (
    select
        contacts.account_id,
        contacts.contact_id,
        contacts.as_of,
        count(*) as open_tickets
    from contacts
    inner join tickets
        on
            contacts.account_id = tickets.account_id
            and contacts.contact_id = tickets.contact_id
            and contacts.as_of >= tickets.created_on
            and (
                contacts.as_of < tickets.resolved_on
                or (tickets.resolved_on is null and tickets.status in ('open', 'pending'))
            )
    group by contacts.account_id, contacts.contact_id, contacts.as_of
),

final as (
    select
        contacts.account_id,
        contacts.contact_id,
        contacts.as_of,
        cast(coalesce(revenue.revenue, 0) as numeric) as revenue,
        case
            when contacts.as_of + {{ retention_days }} <= as_of.as_of_date
                then coalesce(revenue.purchases_after, 0) > 0
        end as bought_after,
        case
            when contacts.as_of < as_of.as_of_date then coalesce(revenue.purchases_after, 0) > 0
        end as bought_after_to_date,
        cast(coalesce(campaigns.campaigns, 0) as integer) as campaigns,
        cast(coalesce(campaigns.delivered, 0) as integer) as delivered,
        cast(coalesce(campaigns.was_read, 0) as integer) as was_read,
        cast(coalesce(campaigns.clicked, 0) as integer) as clicked,
        cast(coalesce(campaigns.replied, 0) as integer) as replied,
        cast(coalesce(open_tickets.open_tickets, 0) as integer) as open_tickets
    from contacts
    cross join as_of
    left join revenue
        on
            contacts.account_id = revenue.account_id
            and contacts.contact_id = revenue.contact_id
            and contacts.as_of = revenue.as_of
    left join campaigns
        on
            contacts.account_id = campaigns.account_id
            and contacts.contact_id = campaigns.contact_id
            and contacts.as_of = campaigns.as_of
    left join open_tickets
        on
            contacts.account_id = open_tickets.account_id
            and contacts.contact_id = open_tickets.contact_id
            and contacts.as_of = open_tickets.as_of
)

select * from final
