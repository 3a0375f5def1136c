"""Author the committed Great Expectations project under `expectations/`.

The JSON files under `expectations/` (suites, validation definitions, the checkpoint) and
`expectations/great_expectations.yml` are the source of truth and are committed. This
module is how they were written, through GX's own API so every file is valid GX 1.x
serialisation. Regenerate after changing an expectation here:

    python -m segmentation_dev.audit_project expectations

It needs a database with the audited relations (a test database after `dbt build`, or the
demo database) because GX checks that table assets exist when they are added. Nothing in
the generated files holds a credential: the connection string names only `${PGUSER}` and
libpq reads host, port, password and database from the PG* environment at run time.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from segmentation import settings
from segmentation.steps.audit import CHECKPOINT, QUARANTINE_SUITES  # noqa: F401 - one definition

DATASOURCE = "segments_warehouse"
# No host and no password in the URL: psycopg2 (libpq) takes them from PG* variables.
CONNECTION_STRING = "postgresql+psycopg2://${PGUSER}@/"

# Relations the audit validates. `audit_*` tables are written by segmentation.steps.audit on every
# run from the dbt-built candidate relations, so the GX assets never depend on optional ones.
# The two large ones (membership, recipients) are checked through per-segment summaries
# the warehouse computes in one pass each, never row by row in GX.
ASSETS = {
    "candidate_membership_summary": (settings.SCHEMA_AUDIT, "audit_membership_summary"),
    "candidate_catalogue": (settings.SCHEMA_AUDIT, "segment_catalogue"),
    "candidate_sizes": (settings.SCHEMA_AUDIT, "audit_candidate_sizes"),
    "candidate_group_assignments": (settings.SCHEMA_AUDIT, "audit_group_assignments"),
    "candidate_recipients_summary": (settings.SCHEMA_AUDIT, "audit_recipients_summary"),
}

# The suite <- asset pairs the checkpoint validates, in order.
VALIDATIONS = {
    "membership_integrity": "candidate_membership_summary",
    "catalogue_integrity": "candidate_catalogue",
    "segment_bounds": "candidate_sizes",
    "exclusive_groups": "candidate_group_assignments",
    "recipients": "candidate_recipients_summary",
}


def _suites() -> dict[str, list]:
    import great_expectations.expectations as gxe

    audit = settings.SCHEMA_AUDIT
    return {
        # Over audit_membership_summary: one row per segment, computed by the warehouse in
        # one pass (warehouse/sql/audit.sql), with a sample of each kind of offender.
        "membership_integrity": [
            gxe.ExpectColumnValuesToNotBeNull(column="account_id"),
            gxe.ExpectColumnValuesToNotBeNull(column="segment_key"),
            gxe.UnexpectedRowsExpectation(
                description="No member has a null contact_id.",
                unexpected_rows_query=(
                    "select account_id, segment_key, null_contacts from {batch} "
                    "where null_contacts > 0"
                ),
            ),
            gxe.UnexpectedRowsExpectation(
                description="A contact is a member of a segment at most once.",
                unexpected_rows_query=(
                    "select account_id, segment_key, duplicate_members, "
                    "unnest(duplicate_sample) as contact_id from {batch} "
                    "where duplicate_members > 0"
                ),
            ),
            gxe.UnexpectedRowsExpectation(
                description=(
                    "Tenant isolation: every member is a staged (so not deleted) contact "
                    "of the same account."
                ),
                unexpected_rows_query=(
                    "select account_id, segment_key, foreign_members, "
                    "unnest(foreign_sample) as contact_id from {batch} "
                    "where foreign_members > 0"
                ),
            ),
            gxe.UnexpectedRowsExpectation(
                description="Every segment with members has an enabled catalogue row.",
                unexpected_rows_query=(
                    "with s as (select * from {batch}) "
                    "select s.account_id, s.segment_key from s "
                    f"where not exists (select 1 from {audit}.segment_catalogue as c "
                    "where c.account_id = s.account_id and c.segment_key = s.segment_key "
                    "and c.enabled)"
                ),
            ),
        ],
        "catalogue_integrity": [
            gxe.ExpectCompoundColumnsToBeUnique(
                column_list=["account_id", "segment_key"],
                description="One catalogue row per account and segment.",
            ),
            gxe.UnexpectedRowsExpectation(
                description="Enabled segments carry a name and a definition hash.",
                unexpected_rows_query=(
                    "select account_id, segment_key from {batch} "
                    "where enabled and (name is null or definition_hash is null)"
                ),
            ),
            gxe.UnexpectedRowsExpectation(
                description=(
                    "Every enabled segment the definitions declare has a catalogue row, "
                    "even with 0 members."
                ),
                unexpected_rows_query=(
                    "with c as (select * from {batch}) "
                    f"select e.account_id, e.segment_key from {audit}.audit_expected_segments "
                    "as e where not exists (select 1 from c "
                    "where c.account_id = e.account_id and c.segment_key = e.segment_key "
                    "and c.enabled)"
                ),
            ),
        ],
        # Each query returns (account_id, segment_key, reason): one row per failing segment,
        # which the audit turns into the quarantine dict.
        "segment_bounds": [
            gxe.UnexpectedRowsExpectation(
                description="Member count is at least expect.min_members.",
                unexpected_rows_query=(
                    "select account_id, segment_key, 'member count ' || member_count "
                    "|| ' is below min_members ' || min_members as reason from {batch} "
                    "where min_members is not null and member_count < min_members"
                ),
            ),
            gxe.UnexpectedRowsExpectation(
                description="Member count is at most expect.max_members.",
                unexpected_rows_query=(
                    "select account_id, segment_key, 'member count ' || member_count "
                    "|| ' is above max_members ' || max_members as reason from {batch} "
                    "where max_members is not null and member_count > max_members"
                ),
            ),
            gxe.UnexpectedRowsExpectation(
                description=(
                    "Change against the last published count is within expect.max_change_pct "
                    "(skipped on the first publish, when the last count was 0, on the first "
                    "run of a changed definition_hash, and for a change of fewer than "
                    "change_floor members)."
                ),
                unexpected_rows_query=(
                    "select account_id, segment_key, 'member count changed from ' "
                    "|| last_published_count || ' to ' || member_count || ' ('"
                    " || round(100.0 * abs(member_count - last_published_count) "
                    "/ last_published_count, 1) || '% > max_change_pct ' "
                    "|| max_change_pct || '%)' as reason from {batch} "
                    "where last_published_count > 0 and not definition_changed "
                    "and abs(member_count - last_published_count) >= change_floor "
                    "and 100.0 * abs(member_count - "
                    "last_published_count) > max_change_pct * last_published_count"
                ),
            ),
        ],
        "exclusive_groups": [
            gxe.UnexpectedRowsExpectation(
                description="A contact holds at most one segment per exclusive group.",
                unexpected_rows_query=(
                    "select account_id, group_key, contact_id, "
                    "count(distinct segment_key) as segments from {batch} "
                    "where exclusive group by account_id, group_key, contact_id "
                    "having count(distinct segment_key) > 1"
                ),
            ),
        ],
        # Over audit_recipients_summary: one row per segment and channel.
        "recipients": [
            gxe.ExpectColumnValuesToBeInSet(
                column="channel", value_set=["whatsapp", "email", "sms"]
            ),
            gxe.UnexpectedRowsExpectation(
                description="Recipients carry an address.",
                unexpected_rows_query=(
                    "select account_id, segment_key, channel, null_addresses, "
                    "unnest(null_address_sample) as contact_id from {batch} "
                    "where null_addresses > 0"
                ),
            ),
            gxe.UnexpectedRowsExpectation(
                description="Recipients have consent for their channel.",
                unexpected_rows_query=(
                    "select account_id, segment_key, channel, without_consent, "
                    "unnest(without_consent_sample) as contact_id from {batch} "
                    "where without_consent > 0"
                ),
            ),
            # address_valid: the address rules (dbt var address_rules), applied by the audit.
            gxe.UnexpectedRowsExpectation(
                description="Phone channels carry an E.164 number, email an email address.",
                unexpected_rows_query=(
                    "select account_id, segment_key, channel, invalid_addresses, "
                    "unnest(invalid_address_sample) as contact_id from {batch} "
                    "where invalid_addresses > 0"
                ),
            ),
        ],
    }


STORES_YML = """
stores:
  expectations_store:
    class_name: ExpectationsStore
    store_backend:
      class_name: TupleFilesystemStoreBackend
      suppress_store_backend_id: true
      base_directory: suites/
  validation_results_store:
    class_name: ValidationResultsStore
    store_backend:
      class_name: TupleFilesystemStoreBackend
      base_directory: uncommitted/validations/
  checkpoint_store:
    class_name: CheckpointStore
    store_backend:
      class_name: TupleFilesystemStoreBackend
      suppress_store_backend_id: true
      base_directory: checkpoints/
  validation_definition_store:
    class_name: ValidationDefinitionStore
    store_backend:
      class_name: TupleFilesystemStoreBackend
      suppress_store_backend_id: true
      base_directory: validation_definitions/
"""


def write_project(root: Path) -> None:
    """Write a fresh GX file project at `root` (replacing suites, definitions, checkpoint)."""
    import great_expectations as gx
    import yaml

    root = root.resolve()
    for sub in ("suites", "validation_definitions", "checkpoints", "uncommitted", "plugins"):
        shutil.rmtree(root / sub, ignore_errors=True)
    (root / "great_expectations.yml").unlink(missing_ok=True)
    context = gx.get_context(mode="file", context_root_dir=str(root))
    # Point the committed stores at top-level folders of `expectations/` instead of GX's defaults.
    yml_path = root / "great_expectations.yml"
    project = yaml.safe_load(yml_path.read_text())
    project.update(yaml.safe_load(STORES_YML))
    project.pop("plugins_directory", None)
    yml_path.write_text(yaml.safe_dump(project, sort_keys=False))
    shutil.rmtree(root / "expectations", ignore_errors=True)
    shutil.rmtree(root / "plugins", ignore_errors=True)
    context = gx.get_context(mode="file", context_root_dir=str(root))

    source = context.data_sources.add_postgres(name=DATASOURCE, connection_string=CONNECTION_STRING)
    batches = {}
    for asset_name, (schema, table) in ASSETS.items():
        asset = source.add_table_asset(name=asset_name, schema_name=schema, table_name=table)
        batches[asset_name] = asset.add_batch_definition_whole_table(name="whole_table")

    definitions = []
    suites = _suites()
    for suite_name, asset_name in VALIDATIONS.items():
        suite = context.suites.add(gx.ExpectationSuite(name=suite_name))
        for expectation in suites[suite_name]:
            suite.add_expectation(expectation)
        definitions.append(
            context.validation_definitions.add(
                gx.ValidationDefinition(name=suite_name, data=batches[asset_name], suite=suite)
            )
        )
    context.checkpoints.add(
        gx.Checkpoint(
            name=CHECKPOINT,
            validation_definitions=definitions,
            actions=[gx.checkpoint.UpdateDataDocsAction(name="update_data_docs")],
            result_format={"result_format": "COMPLETE"},
        )
    )
    shutil.rmtree(root / "uncommitted", ignore_errors=True)
    # No usage analytics leave a warehouse job.
    project = yaml.safe_load(yml_path.read_text())
    project["analytics_enabled"] = False
    # GX's tqdm bars would flood the Airflow task logs.
    project["progress_bars"] = {"globally": False, "metric_calculations": False}
    yml_path.write_text(yaml.safe_dump(project, sort_keys=False))


if __name__ == "__main__":
    write_project(
        Path(sys.argv[1]) if len(sys.argv) > 1 else settings.project_dir() / "expectations"
    )
