-- The report (steps.report): what `segments report` shows. Read-only. Schemas are filled in
-- by psycopg.sql ({marts}: segments_marts, the analytics marts of issue 13); values are
-- bound. The marts queries run only when steps.report found their relation
-- (relation_exists); a missing or empty one shows as "not computed yet for this date".

-- name: relation_exists
select to_regclass(%(relation)s) is not null as present;

-- name: report_date
-- The latest recorded date (history) and its run: the date every section shows.
select
    as_of,
    run_id
from {history}.recorded_dates
order by as_of desc
limit 1;

-- name: segments
select
    account_id,
    segment_key,
    name,
    description,
    owner,
    visibility,
    tags,
    definition_hash,
    member_count,
    as_of,
    stale,
    stale_reason
from {serving}.segments
order by account_id, name, segment_key;

-- name: sizes
-- Each segment's recorded sizes over the last %(days)s days up to the report date.
select
    account_id,
    segment_key,
    as_of,
    member_count,
    entered,
    exited,
    stale
from {history}.segment_sizes
where as_of <= %(as_of)s and as_of > %(as_of)s::date - %(days)s::integer
order by account_id, segment_key, as_of;

-- name: overlap
-- Members shared by two segments of one account, from the published membership.
select
    a.account_id,
    a.segment_key,
    b.segment_key as other_key,
    count(*) as shared
from {serving}.segment_members as a
inner join {serving}.segment_members as b
    on
        a.account_id = b.account_id
        and a.contact_id = b.contact_id
        and a.segment_key != b.segment_key
group by a.account_id, a.segment_key, b.segment_key
order by a.account_id, a.segment_key, other_key;

-- name: group_assignments
select
    account_id,
    group_key,
    segment_key,
    count(*) as contacts
from {serving}.group_assignments
group by account_id, group_key, segment_key
order by account_id, group_key, segment_key;

-- name: segment_kpis
select
    account_id,
    segment_key,
    members,
    share_of_contacts,
    arpu,
    retention_rate,
    delivered_rate,
    read_rate,
    clicked_rate,
    replied_rate,
    open_tickets_per_member
from {marts}.segment_kpis
where as_of = %(as_of)s;

-- name: account_kpis
select
    account_id,
    members,
    share_of_contacts,
    arpu,
    retention_rate,
    delivered_rate,
    read_rate,
    clicked_rate,
    replied_rate,
    open_tickets_per_member
from {marts}.account_kpis
where as_of = %(as_of)s;

-- name: segment_stability
select
    account_id,
    segment_key,
    members,
    retained_1d,
    retained_7d,
    retained_30d,
    churn_rate,
    mean_stint_days,
    median_stint_days
from {marts}.segment_stability
where as_of = %(as_of)s;

-- name: segment_migration
-- The moves into the report date, from every earlier date the mart compares with.
select
    account_id,
    group_key,
    from_as_of,
    to_as_of,
    interval_days,
    from_segment,
    to_segment,
    contacts
from {marts}.segment_migration
where to_as_of = %(as_of)s
order by account_id, group_key, interval_days, from_segment, to_segment;

-- name: segment_time_to_move
select
    account_id,
    group_key,
    from_segment,
    to_segment,
    moves,
    mean_days_before_move,
    median_days_before_move
from {marts}.segment_time_to_move
order by account_id, group_key, from_segment, to_segment;

-- name: rfm_grid
select
    account_id,
    r_score,
    f_score,
    count(*) as contacts,
    avg(monetary) as avg_monetary
from {marts}.rfm_scores
where as_of = %(as_of)s
group by account_id, r_score, f_score
order by account_id, r_score, f_score;

-- name: rfm_segments
select
    account_id,
    rfm_segment,
    count(*) as size
from {marts}.rfm_scores
where as_of = %(as_of)s
group by account_id, rfm_segment
order by account_id, rfm_segment;

-- name: cluster_profiles
select
    account_id,
    cluster_id,
    cluster_label,
    size,
    features
from {marts}.cluster_profiles
where as_of = %(as_of)s
order by account_id, cluster_id;

-- name: cluster_runs
select
    account_id,
    status,
    k,
    silhouette,
    note
from {marts}.cluster_runs
where as_of = %(as_of)s;
