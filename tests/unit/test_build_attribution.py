"""Which account owns a failed dbt node (pipeline.build's containment): an account's own
model, a test of it; never a template, feature, staging model or a source test."""

from __future__ import annotations

from segmentation.steps import pipeline

OWNED = {"acme": ["seg__acme__own"], "globex": ["seg__globex__own"]}


def node(uid: str, tags: list[str] | None = None, depends_on: list[str] | None = None) -> dict:
    return {
        "unique_id": uid,
        "tags": tags or [],
        "depends_on": depends_on or [],
        "message": 'Database Error in model x\n  relation "x" already exists\n  compiled code at p',
    }


def test_an_accounts_model_and_its_test_belong_to_it() -> None:
    model = node(
        "model.segmentation.seg__globex__own",
        ["segment", "account:globex"],
        ["model.segmentation.int_segment_as_of"],
    )
    test = node("test.segmentation.unique_x", [], ["model.segmentation.seg__acme__own"])
    causes = pipeline._failed_node_accounts([model, test], OWNED)
    assert causes is not None and sorted(causes) == ["acme", "globex"]
    assert causes["globex"] == (
        "dbt: model.segmentation.seg__globex__own failed: Database Error in model x: "
        'relation "x" already exists; fix it and rerun the date'
    )


def test_failures_no_single_account_owns() -> None:
    for failed in (
        node("model.segmentation.seg__all__reachable", ["segment", "account:*"]),
        node("model.segmentation.stg_crm__contacts"),
        node("test.segmentation.not_null_x", [], ["model.segmentation.stg_crm__accounts"]),
        node("test.segmentation.source_x", [], ["source.segmentation.crm.accounts"]),
        node("test.segmentation.two", [], ["model.x.seg__acme__own", "model.x.seg__globex__own"]),
    ):
        own = node("model.segmentation.seg__acme__own", ["account:acme"])
        assert pipeline._failed_node_accounts([own, failed], OWNED) is None, failed
