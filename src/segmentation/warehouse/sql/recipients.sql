-- The per-channel recipients of a membership, written once for the audit (what it checks) and
-- publish (what Broadcast gets): one row per member, channel and address the contact
-- consented to, with address_valid from the address rules (dbt var address_rules, bound as
-- e164_rule and email_rule). {members} has (account_id, segment_key, contact_id), {contacts}
-- the staged contact columns; both are filled in by psycopg.sql (warehouse/recipients.py).

-- name: channels
-- Each contact's channels: one row per channel it consented to with a non-empty address.
select
    c.account_id,
    c.contact_id,
    ch.channel,
    ch.address,
    ch.consent,
    case
        when ch.channel = 'email' then ch.address ~ %(email_rule)s
        else ch.address ~ %(e164_rule)s
    end as address_valid
from {contacts} as c
cross join
    lateral (
        values
        ('whatsapp', c.phone, c.consent_whatsapp),
        ('sms', c.phone, c.consent_sms),
        ('email', c.email, c.consent_email)
    ) as ch (channel, address, consent)
where ch.consent and nullif(ch.address, '') is not null;

-- name: recipients
-- {channels}: the query above over the same contacts.
select
    m.account_id,
    m.segment_key,
    m.contact_id,
    ch.channel,
    ch.address,
    ch.consent,
    ch.address_valid
from {members} as m
inner join ({channels}) as ch
    on m.account_id = ch.account_id and m.contact_id = ch.contact_id;
