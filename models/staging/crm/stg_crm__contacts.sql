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

kept as (
    select latest.*
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

final as (
    select
        contact_id,
        account_id,
        full_name,
        email,
        phone,
        gender,
        date_of_birth,
        job_title,
        city,
        province,
        country,
        lifecycle_stage,
        lead_source,
        owner_user_id,
        tags,
        custom_fields,
        consent_whatsapp,
        consent_email,
        consent_sms,
        consent_updated_at,
        loyalty_tier,
        loyalty_points,
        created_at,
        created_by,
        updated_at,
        updated_by
    from kept
)

select * from final
