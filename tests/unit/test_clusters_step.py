"""The clustering step's settings and its agreement with the pipeline (no database)."""

from __future__ import annotations

import pytest

from segmentation.errors import ClusterError
from segmentation.steps import clusters


def test_settings_become_the_cluster_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEGMENTS_CLUSTER_K_MIN", "3")
    monkeypatch.setenv("SEGMENTS_CLUSTER_K_MAX", "5")
    monkeypatch.setenv("SEGMENTS_CLUSTER_MATCH_DISTANCE", "0.5")
    config = clusters.config()
    assert (config.k_min, config.k_max, config.match_distance) == (3, 5, 0.5)
    assert (config.min_contacts, config.sample_size) == (50, 10_000)  # the defaults


def test_a_bad_setting_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEGMENTS_CLUSTER_K_MAX", "eight")
    with pytest.raises(ClusterError, match="SEGMENTS_CLUSTER_K_MAX='eight' is not an integer"):
        clusters.config()


def test_an_empty_k_range_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEGMENTS_CLUSTER_K_MIN", "6")
    monkeypatch.setenv("SEGMENTS_CLUSTER_K_MAX", "4")
    with pytest.raises(ClusterError, match=r"k_max \(4\) must not be below k_min \(6\)"):
        clusters.config()
