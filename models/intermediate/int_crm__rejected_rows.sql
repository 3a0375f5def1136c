-- Every raw row staging keeps out, one row per key (its latest version, deduplicated
-- exactly as the staging models do it), with the reason: outcome 'dropped'. Duplicates and
-- soft-deleted contacts are not rejections: staging resolves them rather than dropping data.
-- Also listed, for keys that may still be staged: versions skipped for an implausible order
-- column ('version_skipped'), contact values made NULL ('nulled') and account timezones
-- replaced by var default_timezone ('defaulted').
--
-- record_id is the row's own ID; for contact_companies it is '<contact_id>/<company_id>'.
-- column_name is the offending column (NULL for reasons about the row's references).
-- Reasons: see macros/staging/crm_rejection_reason.sql and crm_plausibility.sql.

with

accounts_rejected as (
    select
        'accounts' as source_table,
        account_id,
        account_id as record_id,
        cast(null as text) as contact_id,
        'invalid_timezone' as reason,
        'timezone' as column_name,
        'defaulted' as outcome
    from {{ ref('stg_crm__accounts') }}
    where not timezone_is_valid
),

users_rejected as (
    {{ crm_rejected_rows('users') }}
),

contacts_rejected as (
    {{ crm_rejected_rows('contacts') }}
),

companies_rejected as (
    {{ crm_rejected_rows('companies') }}
),

contact_companies_rejected as (
    {{ crm_rejected_rows('contact_companies') }}
),

deals_rejected as (
    {{ crm_rejected_rows('deals') }}
),

tickets_rejected as (
    {{ crm_rejected_rows('tickets') }}
),

conversations_rejected as (
    {{ crm_rejected_rows('conversations') }}
),

campaigns_rejected as (
    {{ crm_rejected_rows('campaigns') }}
),

campaign_events_rejected as (
    {{ crm_rejected_rows('campaign_events') }}
),

orders_rejected as (
    {{ crm_rejected_rows('orders') }}
),

final as (
    select * from accounts_rejected
    union all
    select * from users_rejected
    union all
    select * from contacts_rejected
    union all
    select * from companies_rejected
    union all
    select * from contact_companies_rejected
    union all
    select * from deals_rejected
    union all
    select * from tickets_rejected
    union all
    select * from conversations_rejected
    union all
    select * from campaigns_rejected
    union all
    select * from campaign_events_rejected
    union all
    select * from orders_rejected
)

select * from final
