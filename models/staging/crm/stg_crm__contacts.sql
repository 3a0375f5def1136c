with

source as (
    select * from {{ source('crm', 'contacts') }}
),

renamed as (
    select
        {{ normalize_id('contact_id') }} as contact_id,
        {{ normalize_id('account_id') }} as account_id,
        {{ normalize_text('full_name') }} as full_name,
        {{ normalize_email('email') }} as email,
        {{ normalize_phone('phone') }} as phone,
        {{ normalize_picklist('gender', {
            'm': 'male', 'l': 'male', 'laki_laki': 'male', 'pria': 'male', 'man': 'male',
            'f': 'female', 'p': 'female', 'perempuan': 'female', 'wanita': 'female', 'woman': 'female',
        }) }} as gender,
        date_of_birth,
        {{ normalize_text('job_title') }} as job_title,
        {{ normalize_place('city') }} as city,
        {{ normalize_place('province') }} as province,
        {{ normalize_country('country') }} as country,
        {{ normalize_picklist('lifecycle_stage') }} as lifecycle_stage,
        {{ normalize_picklist('lead_source') }} as lead_source,
        {{ normalize_id('owner_user_id') }} as owner_user_id,
        -- Tags compare case-insensitively: one lower-cased, trimmed, sorted set, never NULL.
        array(
            select distinct lower({{ normalize_text('raw_tag') }})
            from unnest(tags) as raw_tags (raw_tag)
            where {{ normalize_text('raw_tag') }} is not null
            order by 1
        ) as tags,
        case
            when jsonb_typeof(custom_fields) = 'object' then custom_fields else '{}'::jsonb
        end as custom_fields,
        -- Consent nobody recorded is no consent.
        coalesce(consent_whatsapp, false) as consent_whatsapp,
        coalesce(consent_email, false) as consent_email,
        coalesce(consent_sms, false) as consent_sms,
        consent_updated_at,
        {{ normalize_picklist('loyalty_tier') }} as loyalty_tier,
        loyalty_points,
        created_at,
        {{ normalize_id('created_by') }} as created_by,
        updated_at,
        {{ normalize_id('updated_by') }} as updated_by,
        deleted_at,
        _loaded_at,
        {{ crm_row_hash('source') }} as _row_hash
    from source
),

latest as (
    {{ latest_per_key('renamed', 'contacts') }}
),

-- Consent fails safe (docs/raw-contract.md, "Consent"): the latest withdrawal per channel
-- over EVERY version of a contact, skipped and superseded ones included. A withdrawal dated
-- beyond the plausible bound counts as the newest of all; one dated before
-- crm_min_timestamp, or undated, is left to the latest-version rule.
consent_withdrawals as (
    select
        account_id,
        contact_id,
        max(case when not consent_whatsapp then withdrawn_at end) as whatsapp_withdrawn_at,
        max(case when not consent_email then withdrawn_at end) as email_withdrawn_at,
        max(case when not consent_sms then withdrawn_at end) as sms_withdrawn_at
    from (
        select
            {{ normalize_id('raw_contact.account_id') }} as account_id,
            {{ normalize_id('raw_contact.contact_id') }} as contact_id,
            coalesce(raw_contact.consent_whatsapp, false) as consent_whatsapp,
            coalesce(raw_contact.consent_email, false) as consent_email,
            coalesce(raw_contact.consent_sms, false) as consent_sms,
            case
                when raw_contact.consent_updated_at > {{ crm_max_time('raw_contact') }}
                    then 'infinity'::timestamptz
                when raw_contact.consent_updated_at >= {{ crm_bounds()['crm_min_timestamp'] }}
                    then raw_contact.consent_updated_at
            end as withdrawn_at
        -- The raw table again rather than the `source` CTE: a second reference would
        -- make PostgreSQL materialise every raw contact.
        from {{ source('crm', 'contacts') }} as raw_contact
        where
            raw_contact.consent_updated_at is not null
            and not (
                coalesce(raw_contact.consent_whatsapp, false)
                and coalesce(raw_contact.consent_email, false)
                and coalesce(raw_contact.consent_sms, false)
            )
    ) as dated
    group by 1, 2
),

kept as (
    select
        latest.*,
        {{ crm_value_ok({'column': 'consent_updated_at', 'kind': 'timestamp'}, 'latest') }} as consent_updated_at_ok
    from latest
    where
        {{ crm_keep_row('contacts', 'latest') }}
        -- Live in its latest version (the lookup keeps estimates sane, see base model).
        and exists (
            select 1 from {{ ref('base_crm__contact_versions') }} as contact_version
            where
                contact_version.account_id = latest.account_id
                and contact_version.contact_id = latest.contact_id
                and not contact_version.is_deleted
        )
),

-- Implausible values of the kept version become NULL (listed in int_crm__rejected_rows as
-- 'nulled'). A consent grant counts only with a plausible (or no) consent_updated_at, and
-- only if no version withdrew that channel at or after it.
final as (
    select
        kept.contact_id,
        kept.account_id,
        kept.full_name,
        kept.email,
        kept.phone,
        kept.gender,
        {{ crm_plausible_or_null('contacts', 'date_of_birth', 'kept') }} as date_of_birth,
        kept.job_title,
        kept.city,
        kept.province,
        kept.country,
        kept.lifecycle_stage,
        kept.lead_source,
        kept.owner_user_id,
        kept.tags,
        kept.custom_fields,
        coalesce(
            kept.consent_whatsapp
            and kept.consent_updated_at_ok
            and (
                withdrawn.whatsapp_withdrawn_at is null
                or withdrawn.whatsapp_withdrawn_at < kept.consent_updated_at
            ),
            false
        ) as consent_whatsapp,
        coalesce(
            kept.consent_email
            and kept.consent_updated_at_ok
            and (
                withdrawn.email_withdrawn_at is null
                or withdrawn.email_withdrawn_at < kept.consent_updated_at
            ),
            false
        ) as consent_email,
        coalesce(
            kept.consent_sms
            and kept.consent_updated_at_ok
            and (
                withdrawn.sms_withdrawn_at is null
                or withdrawn.sms_withdrawn_at < kept.consent_updated_at
            ),
            false
        ) as consent_sms,
        {{ crm_plausible_or_null('contacts', 'consent_updated_at', 'kept') }} as consent_updated_at,
        kept.loyalty_tier,
        {{ crm_plausible_or_null('contacts', 'loyalty_points', 'kept') }} as loyalty_points,
        {{ crm_plausible_or_null('contacts', 'created_at', 'kept') }} as created_at,
        kept.created_by,
        kept.updated_at,
        kept.updated_by
    from kept
    left join consent_withdrawals as withdrawn
        on
            kept.account_id = withdrawn.account_id
            and kept.contact_id = withdrawn.contact_id
)

select * from final
