-- Clustering (steps.clusters): the tables it writes in {marts} and the queries it runs.
-- `segments db init` runs the two DDL blocks (bootstrap.init_db). Every table is per
-- (account_id, as_of): the step deletes and inserts one account's date in one transaction,
-- so a rerun of a date replaces it.

-- ==== DDL: contact_clusters (also declared by the RFM part; the same columns) ==========
-- name: create_contact_clusters
create table if not exists {marts}.contact_clusters (
    account_id text not null,
    contact_id text not null,
    as_of date not null,
    cluster_id integer not null,
    cluster_label text not null,
    primary key (account_id, as_of, contact_id)
);

-- ==== DDL: cluster_profiles and cluster_runs (the clustering part) =====================
-- name: create_cluster_tables
-- features: mean raw value per feature and share per industry ("industry:<name>");
-- centroid: the cluster's centre in the model's space (log-scaled, imputed features, industry
-- shares), what the next date's clusters are matched against.
create table if not exists {marts}.cluster_profiles (
    account_id text not null,
    as_of date not null,
    cluster_id integer not null,
    cluster_label text not null,
    size bigint not null check (size > 0),
    features jsonb not null,
    centroid jsonb not null,
    primary key (account_id, as_of, cluster_id)
);

-- One row per staged account and date: clustered, or skipped with the reason in note.
create table if not exists {marts}.cluster_runs (
    account_id text not null,
    as_of date not null,
    status text not null check (status in ('clustered', 'skipped')),
    k integer,
    silhouette double precision,
    note text not null,
    run_id text not null,
    contacts bigint not null,
    primary key (account_id, as_of)
);

-- ==== Queries ===========================================================================
-- name: feature_accounts
-- Every staged account with the number of feature rows and their as-of dates.
select
    a.account_id,
    count(f.contact_id) as contacts,
    min(f.as_of) as first_as_of,
    max(f.as_of) as last_as_of
from {staging}.stg_crm__accounts as a
left join {marts}.int_cluster_features as f on a.account_id = f.account_id
group by a.account_id
order by a.account_id;

-- name: features
-- Streamed through a server-side cursor; every column but the keys is a feature.
select f.*
from {marts}.int_cluster_features as f
where f.account_id = %(account_id)s
order by f.contact_id;

-- name: previous_clusters
-- The clusters of the account's latest clustered date before this one.
select
    p.cluster_id,
    p.centroid
from {marts}.cluster_profiles as p
where
    p.account_id = %(account_id)s
    and p.as_of = (
        select max(r.as_of)
        from {marts}.cluster_runs as r
        where
            r.account_id = %(account_id)s
            and r.as_of < %(as_of)s
            and r.status = 'clustered'
    )
order by p.cluster_id;

-- name: max_cluster_id
-- The highest id used before this date: a new cluster gets a higher one.
select coalesce(max(p.cluster_id), 0) as max_cluster_id
from {marts}.cluster_profiles as p
where p.account_id = %(account_id)s and p.as_of < %(as_of)s;

-- name: delete_date
delete from {marts}.contact_clusters
where account_id = %(account_id)s and as_of = %(as_of)s;
delete from {marts}.cluster_profiles
where account_id = %(account_id)s and as_of = %(as_of)s;
delete from {marts}.cluster_runs
where account_id = %(account_id)s and as_of = %(as_of)s;

-- name: copy_contact_clusters
copy {marts}.contact_clusters (
    account_id, contact_id, as_of, cluster_id, cluster_label
) from stdin;

-- name: insert_profile
insert into {marts}.cluster_profiles (
    account_id, as_of, cluster_id, cluster_label, size, features, centroid
)
values (
    %(account_id)s,
    %(as_of)s,
    %(cluster_id)s,
    %(cluster_label)s,
    %(size)s,
    %(features)s,
    %(centroid)s
);

-- name: insert_run
insert into {marts}.cluster_runs (
    account_id, as_of, status, k, silhouette, note, run_id, contacts
)
values (
    %(account_id)s,
    %(as_of)s,
    %(status)s,
    %(k)s,
    %(silhouette)s,
    %(note)s,
    %(run_id)s,
    %(contact_count)s
);
