"""The numeric part of the clustering step (segmentation.analytics.kmeans) on planted data."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from segmentation.analytics import kmeans
from segmentation.analytics.kmeans import ClusterConfig, Features, PreviousCluster

NAMES = ("orders", "order_value", "recency_days", "campaign_engagements", "tickets")
# Four well-separated blobs of mixed sizes, in units of the blobs' own spread (1.0).
CENTERS = np.array(
    [
        [0.0, 0.0, 0.0, 0.0, 0.0],
        [8.0, 8.0, -8.0, 0.0, 0.0],
        [0.0, -8.0, 8.0, 8.0, 0.0],
        [-8.0, 0.0, 0.0, -8.0, 8.0],
    ]
)
SIZES = (400, 250, 150, 80)
RAW = ClusterConfig(log_scale=False)


def blobs(
    sizes: tuple[int, ...] = SIZES,
    centers: np.ndarray = CENTERS,
    seed: int = 1,
    shift: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    values = np.concatenate(
        [
            rng.normal(centers[i] + shift, 1.0, size=(n, centers.shape[1]))
            for i, n in enumerate(sizes)
        ]
    )
    truth = np.repeat(np.arange(len(sizes)), sizes)
    return values, truth


def features(values: np.ndarray, **kw: object) -> Features:
    return Features(NAMES[: values.shape[1]], values, **kw)  # type: ignore[arg-type]


def ids_by_blob(result: kmeans.Clustering, truth: np.ndarray) -> dict[int, int]:
    """The cluster id most rows of each planted blob got."""
    assert result.assignments is not None
    return {
        int(blob): int(np.bincount(result.assignments[truth == blob]).argmax())
        for blob in np.unique(truth)
    }


def test_planted_clusters_are_recovered() -> None:
    values, truth = blobs()
    result = kmeans.cluster(features(values), RAW)

    assert result.status == kmeans.CLUSTERED, result.note
    assert result.k == 4
    assert adjusted_rand_score(truth, result.assignments) > 0.9
    assert result.silhouette is not None and result.silhouette > 0.5
    assert sorted(p.size for p in result.profiles) == sorted(SIZES)
    assert sum(p.size for p in result.profiles) == len(truth)


def test_planted_clusters_with_log_scaled_counts_and_industry() -> None:
    """The step's own transform (signed log1p, z-scores, one-hot industry) on count-like data:
    four kinds of customer, each mostly of one industry."""
    rng = np.random.default_rng(3)
    rates = np.array([[0.2, 5.0, 90.0, 0.5], [6.0, 600.0, 5.0, 0.5], [1.0, 50.0, 30.0, 12.0]])
    sizes = (500, 120, 200)
    values = np.concatenate(
        [rng.poisson(r, size=(n, 4)) for r, n in zip(rates, sizes, strict=True)]
    )
    truth = np.repeat(np.arange(3), sizes)
    industry = np.where(rng.random(len(truth)) < 0.85, truth, rng.integers(0, 3, len(truth)))
    data = Features(
        NAMES[:4], values.astype(float), industry.astype(np.int32), ("f_b", "retail", "fintech")
    )

    result = kmeans.cluster(data, ClusterConfig())

    assert result.status == kmeans.CLUSTERED, result.note
    assert result.k == 3
    assert adjusted_rand_score(truth, result.assignments) > 0.9
    labels = {blob: result.label_of()[cid] for blob, cid in ids_by_blob(result, truth).items()}
    # Many big recent orders, mostly retail: the label says so.
    assert labels[1].split(", ")[-1] == "retail"
    assert "high value" in labels[1] or "frequent buyers" in labels[1]
    assert len(set(labels.values())) == 3


def test_a_large_account_chooses_k_on_a_sample_and_still_recovers_the_clusters() -> None:
    values, truth = blobs(sizes=(2000, 1200, 700, 300))
    result = kmeans.cluster(features(values), ClusterConfig(log_scale=False, sample_size=400))

    assert result.k == 4
    assert "on 400 of 4200 contacts" in result.note
    assert adjusted_rand_score(truth, result.assignments) > 0.9


@pytest.mark.parametrize(("k_min", "k_max"), [(2, 3), (5, 6)])
def test_k_stays_within_the_configured_range(k_min: int, k_max: int) -> None:
    values, _ = blobs()
    result = kmeans.cluster(
        features(values), ClusterConfig(k_min=k_min, k_max=k_max, log_scale=False)
    )
    assert result.k is not None and k_min <= result.k <= k_max


def test_the_same_data_gives_the_same_ids_even_in_another_row_order() -> None:
    values, truth = blobs()
    first = kmeans.cluster(features(values), RAW)
    again = kmeans.cluster(features(values), RAW)
    np.testing.assert_array_equal(first.assignments, again.assignments)
    assert first.profiles == again.profiles

    perm = np.random.default_rng(9).permutation(len(truth))
    shuffled = kmeans.cluster(features(values[perm]), RAW)
    assert ids_by_blob(shuffled, truth[perm]) == ids_by_blob(first, truth)
    # Without a previous date the ids are 1..k, the largest cluster first.
    assert ids_by_blob(first, truth) == {0: 1, 1: 2, 2: 3, 3: 4}


def previous_of(result: kmeans.Clustering) -> list[PreviousCluster]:
    return [PreviousCluster(p.cluster_id, p.centroid) for p in result.profiles]


def test_shifted_centroids_keep_their_ids() -> None:
    values, truth = blobs()
    day1 = kmeans.cluster(features(values), RAW)
    # The next day: every blob moved a little and the sizes turned around, so size order
    # alone (what a first date uses) would hand out the ids differently.
    values2, truth2 = blobs(sizes=(90, 160, 260, 410), seed=2, shift=0.3)
    fresh = kmeans.cluster(features(values2), RAW)
    day2 = kmeans.cluster(features(values2), RAW, previous_of(day1), max_previous_id=4)

    assert ids_by_blob(day2, truth2) == ids_by_blob(day1, truth)
    assert ids_by_blob(fresh, truth2) != ids_by_blob(day1, truth)
    assert adjusted_rand_score(truth2, day2.assignments) > 0.9


def test_a_new_cluster_gets_a_new_id_and_the_others_keep_theirs() -> None:
    values, truth = blobs()
    day1 = kmeans.cluster(features(values), RAW)
    centers = np.vstack([CENTERS, [20.0, 20.0, 20.0, 20.0, 20.0]])
    values2, truth2 = blobs(sizes=(400, 250, 150, 80, 200), centers=centers, seed=4)
    # Ids up to 6 were used on some earlier date: the new cluster takes 7.
    day2 = kmeans.cluster(features(values2), RAW, previous_of(day1), max_previous_id=6)

    got = ids_by_blob(day2, truth2)
    assert day2.k == 5
    assert {b: got[b] for b in range(4)} == ids_by_blob(day1, truth)
    assert got[4] == 7


def test_a_cluster_that_moved_far_gets_a_new_id() -> None:
    values, truth = blobs()
    day1 = kmeans.cluster(features(values), RAW)
    moved = CENTERS.copy()
    moved[3] = [-8.0, 0.0, 0.0, -8.0, 30.0]  # blob 3 moves far away, the others stay
    values2, truth2 = blobs(centers=moved, seed=5)
    day2 = kmeans.cluster(features(values2), RAW, previous_of(day1), max_previous_id=4)

    before, after = ids_by_blob(day1, truth), ids_by_blob(day2, truth2)
    assert {b: after[b] for b in range(3)} == {b: before[b] for b in range(3)}
    assert after[3] == 5


def test_too_few_contacts_are_skipped_with_a_note() -> None:
    values, _ = blobs(sizes=(10, 10, 10, 10))
    result = kmeans.cluster(features(values), ClusterConfig(min_contacts=50))
    assert result.status == kmeans.SKIPPED
    assert result.note.startswith("too few contacts: 40")
    assert result.assignments is None and result.profiles == ()


def test_constant_features_are_skipped_with_a_note() -> None:
    values = np.tile([1.0, 5.0, 3.0, 0.0, 0.0], (300, 1))
    values[:, 3] = np.nan  # no values at all
    result = kmeans.cluster(features(values), RAW)
    assert result.status == kmeans.SKIPPED
    assert result.note.startswith("constant features")
    assert "orders" in result.note and "campaign_engagements" in result.note


def test_constant_columns_are_dropped_and_the_rest_clusters() -> None:
    values, truth = blobs()
    values[:, 4] = 2.0
    values[::7, 3] = np.nan  # missing values get the column's median
    result = kmeans.cluster(features(values), RAW)
    assert result.status == kmeans.CLUSTERED
    assert "constant, not used: tickets" in result.note
    assert adjusted_rand_score(truth, result.assignments) > 0.9
    # Profiles are raw means: the constant column is reported as it is.
    assert all(p.features["tickets"] == 2.0 for p in result.profiles)


def test_one_distinct_row_among_many_is_skipped() -> None:
    values = np.zeros((200, 5))
    values[0] = 1.0  # varies, but only two distinct vectors: k=3 cannot be had
    result = kmeans.cluster(features(values), ClusterConfig(k_min=3, log_scale=False))
    assert result.status == kmeans.SKIPPED
    assert "only 2 distinct" in result.note


def test_profiles_hold_raw_means_and_industry_shares() -> None:
    values, truth = blobs()
    industry = np.where(truth == 1, 0, -1).astype(np.int32)  # blob 1 is all retail
    result = kmeans.cluster(features(values, industry=industry, industry_names=("retail",)), RAW)

    blob1 = ids_by_blob(result, truth)[1]
    profile = next(p for p in result.profiles if p.cluster_id == blob1)
    members = values[result.assignments == blob1]
    assert profile.features["order_value"] == pytest.approx(members[:, 1].mean(), abs=1e-5)
    assert profile.features["industry:retail"] == pytest.approx(1.0, abs=0.01)
    assert profile.label.startswith("high value") or "recent" in profile.label
    assert profile.label.endswith("retail")


def test_config_rejects_an_empty_k_range() -> None:
    with pytest.raises(ValueError, match="k_max"):
        ClusterConfig(k_min=5, k_max=4)
    with pytest.raises(ValueError, match="k_min"):
        ClusterConfig(k_min=1)
