-- The fingerprint of a candidate: the audit records it, publish computes it again inside its
-- transaction and refuses on any difference (segmentation.control.fingerprint). One aggregate
-- pass per relation. Every part has (part, account_id, item_key, row_count, content_hash);
-- duplicates and NULLs count, so what the audit saw is what publish must find.
-- The relations (placeholders <kind>_rel) are filled in by psycopg.sql: identifiers, or an empty
-- relation, a subquery that needs its alias (hence AL05 noqa).

select
    'segment' as part,
    m.account_id,
    m.segment_key as item_key,
    count(*) as row_count,
    md5(string_agg(quote_nullable(m.contact_id), ',' order by m.contact_id collate "C"))  -- noqa: RF03
        as content_hash
from {membership_rel} as m
group by m.account_id, m.segment_key

union all

select
    'catalogue' as part,
    c.account_id,
    c.segment_key as item_key,
    count(*) as row_count,
    md5(string_agg(c.line, E'\n' order by c.line collate "C")) as content_hash
from (
    select
        account_id,
        segment_key,
        row(
            name, description, owner, visibility, tags, enabled, definition_hash,
            expect_min_members, expect_max_members, expect_max_change_pct
        )::text as line  -- noqa: RF04
    from {catalogue_rel} as src  -- noqa: AL05
) as c
group by c.account_id, c.segment_key

union all

select
    'group' as part,
    g.account_id,
    g.group_key as item_key,
    count(*) as row_count,
    md5(string_agg(g.line, E'\n' order by g.line collate "C")) as content_hash
from (
    select
        account_id,
        group_key,
        row(contact_id, segment_key)::text as line  -- noqa: RF04
    from {groups_rel} as src  -- noqa: AL05
) as g
group by g.account_id, g.group_key

union all

select
    'contacts' as part,
    s.account_id,
    null as item_key,
    count(*) as row_count,
    md5(string_agg(s.line, E'\n' order by s.line collate "C")) as content_hash
from (
    select
        account_id,
        row(contact_id, email, phone, consent_whatsapp, consent_email, consent_sms)::text
            as line  -- noqa: RF04
    from {contacts_rel} as src  -- noqa: AL05
) as s
group by s.account_id

union all

select
    'as_of' as part,
    a.account_id,
    null as item_key,
    count(*) as row_count,
    string_agg(a.as_of_date::text, ',' order by a.as_of_date) as content_hash
from {as_of_rel} as a
group by a.account_id
