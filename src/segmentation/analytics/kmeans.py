"""K-means clustering of one account's contacts, on arrays only.

`cluster(features, config, previous)` does the numeric part of steps.clusters:

1. the design matrix: numeric features get a signed log1p (counts and amounts are heavy
   tailed, so a few big spenders would otherwise own a cluster), missing values the column's
   median, then a z-score; industry becomes one-hot columns that stay 0/1 (a z-score would
   blow a rare industry up until it decides every distance). Constant columns are dropped;
   nothing left means the account is skipped.
2. k in [k_min, k_max] by the silhouette on a fixed-seed sample (all rows when few), each k
   fitted with a fixed seed, so the same data gives the same clusters; on a large account the
   chosen model is refined on all rows from the sample's centroids.
3. ids: today's centroids are matched to the previous date's (Hungarian assignment on the
   distance in today's standardised space); a pair closer than `match_distance` keeps the
   old id, every other cluster gets a new one (above any id used before).
4. a profile per cluster: size, mean of every raw feature and industry share, the centroid in
   model space (what the next date matches against) and a label ("high value, recent,
   retail") from its most distinctive features.

Too few rows or nothing that varies is a `skipped` result with a note, never an exception.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn import config_context
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from threadpoolctl import threadpool_limits

CLUSTERED = "clustered"
SKIPPED = "skipped"
INDUSTRY_PREFIX = "industry:"
# More distinct industries than this share one "other" column: the matrix stays narrow.
MAX_INDUSTRY_COLUMNS = 12
N_INIT = 4
# A centroid this many standard deviations from the account's mean names the feature.
LABEL_Z = 0.5
LABEL_WORDS = 2
# An industry with at least this share of a cluster, and this much more than its share of the
# account, ends the cluster's label.
LABEL_INDUSTRY_SHARE = 0.5
LABEL_INDUSTRY_LIFT = 0.1
# sklearn's pairwise-distance chunks (MiB): the silhouette stays small in memory.
WORKING_MEMORY_MB = 64

# Words for a centroid above / below the account's mean, per feature name. Others read
# "high <name>" / "low <name>".
FEATURE_WORDS: dict[str, tuple[str, str]] = {
    "monetary": ("high value", "low value"),
    "order_value": ("high value", "low value"),
    "recency_days": ("lapsed", "recent"),
    "frequency": ("frequent buyers", "rare buyers"),
    "orders": ("frequent buyers", "rare buyers"),
    "campaign_engagements": ("engaged", "unengaged"),
    "campaign_events": ("often messaged", "rarely messaged"),
    "conversations": ("talkative", "quiet"),
    "tickets": ("support heavy", "few tickets"),
    "deals": ("deal active", "few deals"),
    "deals_won": ("deal winners", "few won deals"),
    "company_size": ("large companies", "small companies"),
    "r_score": ("recent", "lapsed"),
    "f_score": ("frequent buyers", "rare buyers"),
    "m_score": ("high value", "low value"),
}


@dataclass(frozen=True)
class ClusterConfig:
    k_min: int = 2
    k_max: int = 8
    min_contacts: int = 50
    sample_size: int = 10_000
    match_distance: float = 1.0
    seed: int = 0
    log_scale: bool = True
    # BLAS/OpenMP threads. One: on a busy machine (the pipeline shares it with PostgreSQL and
    # dbt) spinning worker threads made a small fit ten times slower than a single thread.
    threads: int | None = 1

    def __post_init__(self) -> None:
        if self.k_min < 2:
            raise ValueError(
                f"k_min must be at least 2 (silhouette needs 2 clusters): {self.k_min}"
            )
        if self.k_max < self.k_min:
            raise ValueError(f"k_max ({self.k_max}) must not be below k_min ({self.k_min})")
        if self.sample_size <= self.k_max:
            raise ValueError(f"sample_size ({self.sample_size}) must exceed k_max ({self.k_max})")
        if self.match_distance < 0:
            raise ValueError(f"match_distance must not be negative: {self.match_distance}")


@dataclass(frozen=True)
class Features:
    """One account's contacts: `values[i, j]` is numeric feature `names[j]` of row i (NaN when
    unknown); `industry[i]` an index into `industry_names`, -1 when unknown."""

    names: tuple[str, ...]
    values: np.ndarray
    industry: np.ndarray | None = None
    industry_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.values.ndim != 2 or self.values.shape[1] != len(self.names):
            raise ValueError(f"values must be (rows, {len(self.names)}): {self.values.shape}")
        if self.industry is not None and self.industry.shape != (self.values.shape[0],):
            raise ValueError(f"industry must have one code per row: {self.industry.shape}")

    @property
    def rows(self) -> int:
        return int(self.values.shape[0])


@dataclass(frozen=True)
class PreviousCluster:
    """A cluster of the previous recorded date: its id and centroid in model space."""

    cluster_id: int
    centroid: Mapping[str, float]


@dataclass(frozen=True)
class Profile:
    cluster_id: int
    label: str
    size: int
    features: dict[str, float]  # mean raw value per feature, share per industry
    centroid: dict[str, float]  # model space (log-scaled, imputed; industry shares)


@dataclass(frozen=True)
class Clustering:
    status: str
    note: str
    k: int | None = None
    silhouette: float | None = None
    assignments: np.ndarray | None = None  # cluster id per row
    profiles: tuple[Profile, ...] = field(default=())

    def label_of(self) -> dict[int, str]:
        return {p.cluster_id: p.label for p in self.profiles}


@dataclass
class _Design:
    matrix: np.ndarray  # (rows, columns), standardised
    columns: list[str]
    center: np.ndarray  # model space -> standardised: (x - center) / scale
    scale: np.ndarray
    numeric: int  # the first `numeric` columns are numeric features, the rest industries
    dropped: list[str]
    empty: list[str]


def cluster(
    features: Features,
    config: ClusterConfig,
    previous: Sequence[PreviousCluster] = (),
    max_previous_id: int = 0,
) -> Clustering:
    """Cluster one account's rows; see the module docstring."""
    with threadpool_limits(limits=config.threads):
        return _cluster(features, config, previous, max_previous_id)


def _cluster(
    features: Features,
    config: ClusterConfig,
    previous: Sequence[PreviousCluster],
    max_previous_id: int,
) -> Clustering:
    n = features.rows
    needed = max(config.min_contacts, config.k_min + 1)
    if n < needed:
        return Clustering(
            SKIPPED,
            f"too few contacts: {n}, clustering needs at least {needed} "
            f"(min_contacts {config.min_contacts}, k_min {config.k_min})",
        )
    design = _design(features, config)
    if not design.columns:
        return Clustering(
            SKIPPED,
            f"constant features: no feature varies across the {n} contacts "
            f"({', '.join(design.dropped + design.empty) or 'none given'})",
        )
    rng = np.random.default_rng(config.seed)
    if n > config.sample_size:
        sample = design.matrix[np.sort(rng.choice(n, size=config.sample_size, replace=False))]
    else:
        sample = design.matrix
    distinct = int(np.unique(sample, axis=0).shape[0])
    k_high = min(config.k_max, distinct, sample.shape[0] - 1)
    if k_high < config.k_min:
        return Clustering(
            SKIPPED,
            f"constant features: only {distinct} distinct feature vector(s) among "
            f"{sample.shape[0]} contacts, fewer than k_min {config.k_min}",
        )
    best: tuple[float, KMeans] | None = None
    with config_context(working_memory=WORKING_MEMORY_MB):
        for k in range(config.k_min, k_high + 1):
            model = KMeans(n_clusters=k, n_init=N_INIT, random_state=config.seed).fit(sample)
            if len(np.unique(model.labels_)) < 2:
                continue
            score = float(silhouette_score(sample, model.labels_))
            # Strictly better only: a tie keeps the smaller k.
            if best is None or score > best[0] + 1e-12:
                best = (score, model)
    if best is None:
        return Clustering(SKIPPED, f"constant features: no k in {config.k_min}-{k_high} splits")
    score, model = best
    k = int(model.n_clusters)
    if sample is not design.matrix:
        # copy_x=False: sklearn centres the matrix in place and restores it, no second copy.
        model = KMeans(
            n_clusters=k,
            init=model.cluster_centers_,
            n_init=1,
            random_state=config.seed,
            copy_x=False,
        ).fit(design.matrix)
    raw_labels = model.labels_.astype(np.int64)
    centers = model.cluster_centers_
    sizes = np.bincount(raw_labels, minlength=k)
    order = sorted(range(k), key=lambda c: (-int(sizes[c]), tuple(np.round(centers[c], 9))))
    ids = _match_ids(design, centers, order, previous, max_previous_id, config.match_distance)
    profiles = _profiles(features, design, raw_labels, centers, sizes, ids)
    id_of = np.array([ids[c] for c in range(k)], dtype=np.int64)
    note = (
        f"k={k} of {config.k_min}-{config.k_max} by silhouette on {sample.shape[0]} of {n} contacts"
    )
    if design.dropped:
        note += f"; constant, not used: {', '.join(design.dropped)}"
    if design.empty:
        note += f"; no values, not used: {', '.join(design.empty)}"
    return Clustering(
        CLUSTERED,
        note,
        k=k,
        silhouette=round(score, 6),
        assignments=id_of[raw_labels],
        profiles=tuple(sorted(profiles, key=lambda p: p.cluster_id)),
    )


def _signed_log1p(values: np.ndarray) -> np.ndarray:
    return np.sign(values) * np.log1p(np.abs(values))


def _design(features: Features, config: ClusterConfig) -> _Design:
    n = features.rows
    keep: list[tuple[str, np.ndarray]] = []
    dropped: list[str] = []
    empty: list[str] = []
    for j, name in enumerate(features.names):
        column = features.values[:, j].astype(np.float64, copy=True)
        missing = np.isnan(column)
        if missing.all():
            empty.append(name)
            continue
        if config.log_scale:
            column = _signed_log1p(column)
        if missing.any():
            column[missing] = np.median(column[~missing])
        if _is_constant(column):
            dropped.append(name)
            continue
        keep.append((name, column))
    levels = _industry_levels(features)
    if features.industry is not None and not levels and (features.industry >= 0).any():
        dropped.append("industry")
    elif features.industry is not None and not (features.industry >= 0).any():
        empty.append("industry")
    columns = [name for name, _ in keep] + [INDUSTRY_PREFIX + label for label, _ in levels]
    matrix = np.empty((n, len(columns)), dtype=np.float64)
    center = np.empty(len(columns))
    scale = np.ones(len(columns))
    for j, (_, column) in enumerate(keep):
        center[j], scale[j] = column.mean(), column.std()
        np.subtract(column, center[j], out=matrix[:, j])
        matrix[:, j] /= scale[j]
    for offset, (_, mask) in enumerate(levels):
        j = len(keep) + offset
        matrix[:, j] = mask
        center[j] = matrix[:, j].mean()
        matrix[:, j] -= center[j]
    return _Design(matrix, columns, center, scale, len(keep), dropped, empty)


def _is_constant(column: np.ndarray) -> bool:
    spread = float(column.max() - column.min())
    return spread <= 1e-12 * max(1.0, float(np.abs(column).max()))


def _industry_levels(features: Features) -> list[tuple[str, np.ndarray]]:
    """(label, 0/1 mask) per one-hot column: the most frequent industries, then "other";
    none when fewer than two groups (unknown counts as one) would differ."""
    if features.industry is None:
        return []
    codes = features.industry
    counts = np.bincount(codes[codes >= 0], minlength=len(features.industry_names))
    ranked = sorted((-int(c), features.industry_names[i], i) for i, c in enumerate(counts) if c)
    groups = int(len(ranked) + (codes < 0).any())
    if groups < 2:
        return []
    top = ranked[:MAX_INDUSTRY_COLUMNS]
    levels = [(name, codes == i) for _, name, i in top]
    if len(ranked) > MAX_INDUSTRY_COLUMNS:
        rest = np.isin(codes, [i for _, _, i in ranked[MAX_INDUSTRY_COLUMNS:]])
        levels.append(("other", rest))
    return levels


def _match_ids(
    design: _Design,
    centers: np.ndarray,
    order: list[int],
    previous: Sequence[PreviousCluster],
    max_previous_id: int,
    max_distance: float,
) -> dict[int, int]:
    """Raw k-means label -> cluster id: the previous date's id for a centroid that barely
    moved (optimal one-to-one assignment), a new id for every other cluster."""
    ids: dict[int, int] = {}
    common = [
        j for j, name in enumerate(design.columns) if all(name in p.centroid for p in previous)
    ]
    if previous and common:
        before = np.array(
            [[p.centroid[design.columns[j]] for j in common] for p in previous], dtype=np.float64
        )
        before = (before - design.center[common]) / design.scale[common]
        now = centers[:, common]
        cost = np.sqrt(((now[:, None, :] - before[None, :, :]) ** 2).sum(axis=2))
        for today, before_index in zip(*linear_sum_assignment(cost), strict=True):
            if cost[today, before_index] <= max_distance:
                ids[int(today)] = previous[before_index].cluster_id
    next_id = max([max_previous_id, *(p.cluster_id for p in previous)]) + 1
    for raw in order:
        if raw not in ids:
            ids[raw] = next_id
            next_id += 1
    return ids


def _profiles(
    features: Features,
    design: _Design,
    labels: np.ndarray,
    centers: np.ndarray,
    sizes: np.ndarray,
    ids: dict[int, int],
) -> list[Profile]:
    k = len(sizes)
    means: dict[str, np.ndarray] = {}
    for j, name in enumerate(features.names):
        column = features.values[:, j]
        known = ~np.isnan(column)
        if not known.any():
            continue
        total = np.bincount(labels[known], weights=column[known], minlength=k)
        count = np.bincount(labels[known], minlength=k)
        with np.errstate(invalid="ignore", divide="ignore"):
            means[name] = total / count
    shares: dict[str, np.ndarray] = {}
    overall: dict[str, float] = {}
    if features.industry is not None:
        codes = features.industry
        levels = len(features.industry_names)
        known = codes >= 0
        table = np.bincount(labels[known] * levels + codes[known], minlength=k * levels)
        table = table.reshape(k, levels)
        for i, name in enumerate(features.industry_names):
            if table[:, i].any():
                shares[name] = table[:, i] / sizes
                overall[name] = float(table[:, i].sum()) / float(sizes.sum())
    model_space = centers * design.scale + design.center
    labels_by_raw = {
        raw: _label(centers[raw, : design.numeric], design.columns, shares, overall, raw)
        for raw in range(k)
    }
    profiles = []
    for raw in range(k):
        mean_features = {
            name: round(float(v[raw]), 6) for name, v in means.items() if not np.isnan(v[raw])
        }
        mean_features.update(
            {INDUSTRY_PREFIX + name: round(float(v[raw]), 6) for name, v in shares.items()}
        )
        profiles.append(
            Profile(
                cluster_id=ids[raw],
                label=labels_by_raw[raw],
                size=int(sizes[raw]),
                features=mean_features,
                centroid={
                    name: float(model_space[raw, j]) for j, name in enumerate(design.columns)
                },
            )
        )
    return _unique_labels(profiles)


def _label(
    z: np.ndarray,
    columns: list[str],
    shares: dict[str, np.ndarray],
    overall: dict[str, float],
    raw: int,
) -> str:
    """Up to LABEL_WORDS words for the numeric features furthest from the account's mean
    (at least LABEL_Z standard deviations), then the industry the cluster is made of (when it
    is not just the account's own mix)."""
    words: list[str] = []
    for j in sorted(range(len(z)), key=lambda j: (-abs(float(z[j])), columns[j])):
        if abs(float(z[j])) < LABEL_Z or len(words) == LABEL_WORDS:
            break
        name = columns[j]
        high, low = FEATURE_WORDS.get(name, (f"high {_words(name)}", f"low {_words(name)}"))
        word = high if z[j] > 0 else low
        if word not in words:
            words.append(word)
    if shares:
        name, share = max(((n, float(v[raw])) for n, v in shares.items()), key=lambda t: t[1])
        if share >= LABEL_INDUSTRY_SHARE and share >= overall[name] + LABEL_INDUSTRY_LIFT:
            words.append(_words(name))
    return ", ".join(words) or "typical"


def _words(name: str) -> str:
    return name.replace("_", " ")


def _unique_labels(profiles: list[Profile]) -> list[Profile]:
    """Two clusters with the same words are told apart by their ids."""
    seen: dict[str, int] = {}
    for p in profiles:
        seen[p.label] = seen.get(p.label, 0) + 1
    return [
        p
        if seen[p.label] == 1
        else Profile(p.cluster_id, f"{p.label} #{p.cluster_id}", p.size, p.features, p.centroid)
        for p in profiles
    ]
