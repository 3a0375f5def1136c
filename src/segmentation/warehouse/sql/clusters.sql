-- The clustering step's tables (schema segments_marts, next to the dbt analytics marts).
-- Created by `segments db init` (segmentation.warehouse.bootstrap), never by a run: the dbt
-- build reads contact_clusters as a source (models/analytics/clusters/_clusters__sources.yml)
-- before the clustering step has written anything, so it must exist from the start.

create schema if not exists segments_marts;

-- One row per (account, as-of date, contact): the contact's cluster on that date. YAML
-- fields cluster.id and cluster.label read the row of the run's as-of date.
create table if not exists segments_marts.contact_clusters (
    account_id text not null,
    contact_id text not null,
    as_of date not null,
    cluster_id integer not null,
    cluster_label text,
    primary key (account_id, as_of, contact_id)
);
