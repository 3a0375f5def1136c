-- `segments export` (steps/export.py): one published segment as Broadcast sees it, read in
-- one repeatable-read transaction through a server-side cursor. Values are bound.

-- name: segment
select
    name,  -- noqa: RF04
    member_count,
    as_of,
    published_at,
    stale,
    stale_reason
from {serving}.segments
where account_id = %(account_id)s and segment_key = %(segment_key)s;

-- name: account_segments
select segment_key
from {serving}.segments
where account_id = %(account_id)s
order by segment_key;

-- name: members
-- One row per member, in contact_id order: the addresses Broadcast may use on each channel
-- (NULL: no consent or no valid address), and the staged name when the contact is staged.
select
    m.contact_id,
    c.full_name,
    m.member_since,
    w.address as whatsapp,
    e.address as email,
    s.address as sms
from {serving}.segment_members as m
left join {serving}.broadcast_recipients as w
    on
        m.account_id = w.account_id
        and m.segment_key = w.segment_key
        and m.contact_id = w.contact_id
        and w.channel = 'whatsapp'
left join {serving}.broadcast_recipients as e
    on
        m.account_id = e.account_id
        and m.segment_key = e.segment_key
        and m.contact_id = e.contact_id
        and e.channel = 'email'
left join {serving}.broadcast_recipients as s
    on
        m.account_id = s.account_id
        and m.segment_key = s.segment_key
        and m.contact_id = s.contact_id
        and s.channel = 'sms'
left join {contacts} as c
    on m.account_id = c.account_id and m.contact_id = c.contact_id
where m.account_id = %(account_id)s and m.segment_key = %(segment_key)s
order by m.contact_id;

-- name: recipients
-- The recipients of one channel, as broadcast_recipients has them, in contact_id order.
select
    r.contact_id,
    c.full_name,
    r.channel,
    r.address
from {serving}.broadcast_recipients as r
left join {contacts} as c
    on r.account_id = c.account_id and r.contact_id = c.contact_id
where
    r.account_id = %(account_id)s
    and r.segment_key = %(segment_key)s
    and r.channel = %(channel)s
order by r.contact_id;

-- name: accounts
select distinct account_id
from {serving}.segments
order by account_id;
