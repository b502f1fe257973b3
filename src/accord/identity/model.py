"""The probabilistic model: a Fellegi-Sunter model trained and run by Splink.

``IdentityModel`` looks like a scikit-learn estimator: settings in the
constructor, ``fit`` learns (u by random sampling, m by EM over a few blocking
rules, or m from labelled pairs), learned state sits in attributes ending in
``_``, ``predict`` scores candidate pairs and ``explain`` breaks one pair's
score into per-comparison contributions. The learned model is Splink's JSON,
so it is saved in the store and reloaded with ``IdentityModel.from_json``.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import splink.comparison_level_library as cll
import splink.comparison_library as cl
from splink import Linker, SettingsCreator, block_on

from accord.identity.settings import BlockingRule, ComparisonSpec, ModelSettings

Engine = Literal["duckdb", "spark"]
LinkType = Literal["dedupe_only", "link_only", "link_and_dedupe"]

UNIQUE_ID = "rid"
DUCKDB_MEMORY_LIMIT = "4GB"
"""Memory DuckDB may use for one model's tables before spilling to disk (engine 'duckdb')."""
SOURCE_DATASET = "source_dataset"
MAX_TRAINING_RECORDS = 300_000
"""Unsupervised training reads a random sample of at most this many records. EM blocks (same birth
date, postcode, family name) grow with the square of the records, so at a million records they
held gigabytes; m and u are proportions within blocked or random pairs, and a uniform sample keeps
them (the share of true matches among a block's pairs does not depend on how many records there are)."""
IN_PROCESS_PAIRS = 20_000
"""predict_new scores up to this many candidate pairs in Python (scorer.py, ~20 us a pair) rather than
through Splink (~100 ms of set-up whatever the size)."""
EXPLAIN_CHUNK = 32  # pairs per Splink scoring call when explaining (the product of two lists of <= 32)

log = logging.getLogger(__name__)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = " ".join(record.getMessage().split())
        if text.upper().startswith("WARNING:"):
            text = text[len("WARNING:"):].strip()
        if text and text not in self.messages:
            self.messages.append(text)


@contextmanager
def splink_warnings() -> Iterator[list[str]]:
    """Splink's warnings, deduplicated, into the yielded list instead of stderr.

    While a handler of ours sits on the "splink" logger, Splink adds no console handler of its own.
    """
    logger = logging.getLogger("splink")
    handler = _Collect()
    saved = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    logger.propagate = False
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


def build_comparison(spec: ComparisonSpec):
    """A Splink comparison from one spec."""
    col = spec.column
    if spec.kind == "name" and not spec.group_column and not spec.thresholds:
        comparison = cl.NameComparison(col)
        return comparison.configure(term_frequency_adjustments=True) if spec.term_frequency else comparison
    if spec.kind == "name":
        levels = [cll.NullLevel(col), _tf(cll.ExactMatchLevel(col), spec, col)]
        thresholds = spec.thresholds or [0.92, 0.88]
        levels.append(cll.JaroWinklerLevel(col, thresholds[0]))
        if spec.group_column:
            levels.append(cll.ExactMatchLevel(spec.group_column).configure(
                label_for_charts=f"Same name group ({spec.group_column})"))
        levels += [cll.JaroWinklerLevel(col, t) for t in thresholds[1:]]
        levels.append(cll.ElseLevel())
        return cl.CustomComparison(levels, output_column_name=col)
    if spec.kind == "email":
        levels = [cll.NullLevel(col), _tf(cll.ExactMatchLevel(col), spec, col)]
        if spec.list_column:
            levels.append(cll.ArrayIntersectLevel(spec.list_column, 1))
        if spec.user_column:
            levels.append(cll.ExactMatchLevel(spec.user_column).configure(
                label_for_charts=f"Same user name ({spec.user_column})"))
        levels.append(cll.ElseLevel())
        return cl.CustomComparison(levels, output_column_name=col)
    if spec.kind == "array":
        list_col = spec.list_column or col
        levels = [cll.NullLevel(list_col), cll.ArrayIntersectLevel(list_col, 1), cll.ElseLevel()]
        return cl.CustomComparison(levels, output_column_name=col)
    if spec.kind == "dob":
        comparison = cl.DateOfBirthComparison(col, input_is_string=True, datetime_format=spec.date_format,
                                              invalid_dates_as_null=True)
    elif spec.kind == "levenshtein":
        comparison = cl.LevenshteinAtThresholds(col, [int(t) for t in spec.thresholds or [1, 2]])
    elif spec.kind == "damerau_levenshtein":
        comparison = cl.DamerauLevenshteinAtThresholds(col, [int(t) for t in spec.thresholds or [1, 2]])
    elif spec.kind == "jaro_winkler":
        comparison = cl.JaroWinklerAtThresholds(col, spec.thresholds or [0.9, 0.7])
    elif spec.kind == "exact":
        comparison = cl.ExactMatch(col)
    else:  # pragma: no cover - the settings model lists the kinds
        raise ValueError(f"unknown comparison kind {spec.kind!r}")
    if spec.term_frequency:
        comparison = comparison.configure(term_frequency_adjustments=True)
    return comparison


def build_blocking_rule(rule: BlockingRule):
    return block_on(*rule) if isinstance(rule, list) else rule


def _tf(level, spec: ComparisonSpec, col: str):
    return level.configure(tf_adjustment_column=col) if spec.term_frequency else level


def input_columns(settings: ModelSettings) -> list[str]:
    """Every column the comparisons and blocking rules read."""
    cols: list[str] = []
    for spec in settings.comparisons:
        cols += [c for c in (spec.column, spec.group_column, spec.list_column, spec.user_column) if c]
    for rule in [*settings.blocking_rules, *settings.em_blocking_rules, *settings.prior_rules]:
        if isinstance(rule, list):
            cols += rule
    return list(dict.fromkeys(cols))


def list_columns(settings: ModelSettings) -> set[str]:
    """Columns holding lists of strings (emails, phones)."""
    cols = {s.list_column for s in settings.comparisons if s.list_column}
    return cols | {s.column for s in settings.comparisons if s.kind == "array" and not s.list_column}


class IdentityModel:
    """A Splink linker over one or more frames, each with a ``rid`` column naming the record.

    For ``link_only``, pass one frame per dataset; each gets a ``source_dataset`` column.
    """

    def __init__(self, settings: ModelSettings, *, link_type: LinkType = "dedupe_only",
                 engine: Engine = "duckdb", spark_session: Any = None,
                 duckdb_memory_limit: str = DUCKDB_MEMORY_LIMIT,
                 max_training_records: int | None = MAX_TRAINING_RECORDS) -> None:
        self.settings = settings
        self.max_training_records = max_training_records
        self.duckdb_memory_limit = duckdb_memory_limit
        self.link_type = link_type
        self.engine = engine
        self.spark_session = spark_session
        self.model_json_: dict[str, Any] | None = None
        self.training_summary_: dict[str, Any] = {}
        self.warnings_: list[str] = []
        """Splink's warnings from the last predict, deduplicated."""
        self._linker: Linker | None = None
        self._frames_id: int | None = None

    # --- the verbs -------------------------------------------------------------------------------

    def fit(self, frames: pd.DataFrame | Sequence[pd.DataFrame], labels: pd.DataFrame | None = None
            ) -> IdentityModel:
        """Learn the model: prior from near-certain rules, u by random sampling, m by EM (or labels).

        ``labels`` (record_a, record_b, is_match) trains m from reviewed pairs instead of EM.
        Without labels, more than ``max_training_records`` records train on a uniform random sample
        of that many (``training_summary_["sampled_records"]``).
        """
        records = int(sum(len(f) for f in self._as_list(frames)))
        sample = self._training_sample(frames) if labels is None or not len(labels) else frames
        with splink_warnings() as splink_messages:
            self._fit(sample, labels)
        self.training_summary_["records"] = records
        self.training_summary_["sampled_records"] = int(sum(len(f) for f in self._as_list(sample)))
        if sample is not frames and self._linker is not None:
            # Trained on the sample: its tables and connection are of no further use.
            self._close(self._linker)
            self._linker = None
        for message in splink_messages:
            if message not in self.training_summary_["warnings"]:
                self.training_summary_["warnings"].append(message)
        return self

    def _fit(self, frames: pd.DataFrame | Sequence[pd.DataFrame], labels: pd.DataFrame | None) -> None:
        started = time.perf_counter()
        linker = self._new_linker(frames, self._settings_creator())
        warnings: list[str] = []
        s = self.settings
        try:
            linker.training.estimate_probability_two_random_records_match(
                [build_blocking_rule(r) for r in s.prior_rules], recall=s.prior_recall)
        except Exception as exc:  # noqa: BLE001 - Splink raises plain Exceptions on tiny inputs
            warnings.append(f"prior not estimated ({exc}); using Splink's default")
        linker = self._bounded_prior(linker, frames, warnings)
        linker.training.estimate_u_using_random_sampling(max_pairs=s.u_max_pairs, seed=s.seed)
        sessions = 0
        if labels is not None and len(labels):
            linker.training.estimate_m_from_pairwise_labels(self._register_labels(linker, labels))
            sessions = 1
        else:
            for rule in s.em_blocking_rules:
                # A failed session can leave the linker without the comparisons it was
                # estimating, so it restarts from the parameters learned so far.
                before = linker.misc.save_model_to_json()
                try:
                    linker.training.estimate_parameters_using_expectation_maximisation(
                        build_blocking_rule(rule), estimate_without_term_frequencies=True)
                    sessions += 1
                except Exception as exc:  # noqa: BLE001
                    warnings.append(f"EM blocked on {rule} skipped: {str(exc).splitlines()[0]}")
                    linker = self._new_linker(frames, before)
        self.model_json_ = linker.misc.save_model_to_json()
        self.training_summary_ = {
            "records": int(sum(len(f) for f in self._as_list(frames))),
            "trained_from": "labels" if labels is not None and len(labels) else "em",
            "em_sessions": sessions,
            "probability_two_random_records_match":
                self.model_json_.get("probability_two_random_records_match"),
            "seconds": round(time.perf_counter() - started, 3),
            "warnings": warnings,
        }

    def _training_sample(self, frames: pd.DataFrame | Sequence[pd.DataFrame]
                         ) -> pd.DataFrame | list[pd.DataFrame]:
        """At most ``max_training_records`` rows, each frame sampled at the same rate (seeded)."""
        parts = self._as_list(frames)
        total = sum(len(f) for f in parts)
        cap = self.max_training_records
        if cap is None or total <= cap or not all(isinstance(f, pd.DataFrame) for f in parts):
            return frames
        share = cap / total
        sampled = [f.sample(n=max(2, round(len(f) * share)), random_state=self.settings.seed).sort_index()
                   if len(f) > 2 else f for f in parts]
        return sampled[0] if isinstance(frames, pd.DataFrame) else sampled

    def _bounded_prior(self, linker: Linker, frames: pd.DataFrame | Sequence[pd.DataFrame],
                       warnings: list[str]) -> Linker:
        """A prior of 0 or 1 (no pair, or every pair, of a tiny input matched the prior rules) has no
        match weight and breaks scoring: bound it to half a match, or all but half a match, among
        all pairs."""
        model = linker.misc.save_model_to_json()
        prior = model.get("probability_two_random_records_match")
        if prior is None or 0 < prior < 1:
            return linker
        n = sum(len(f) for f in self._as_list(frames))
        pairs = max(n * (n - 1) / 2, 2)
        model["probability_two_random_records_match"] = 0.5 / pairs if prior <= 0 else 1 - 0.5 / pairs
        warnings.append(f"prior estimated as {prior:g} from {n} records; using "
                        f"{model['probability_two_random_records_match']:.3g} (half a pair) instead")
        return self._new_linker(frames, model)

    def predict(self, frames: pd.DataFrame | Sequence[pd.DataFrame], threshold: float = 0.0, *,
                term_frequencies: dict[str, pa.Table] | None = None) -> pd.DataFrame:
        """Scored candidate pairs at or above ``threshold``: record_a, record_b, probability, match_weight.

        ``term_frequencies`` (column -> table of the column and ``tf_<column>``) replace the frequencies
        Splink would count in ``frames`` (e.g. frequencies over every record when ``frames`` is a part)."""
        with splink_warnings() as messages:
            if term_frequencies:
                if self.model_json_ is None:
                    raise RuntimeError("the model is not trained: call fit() or load it with from_json()")
                linker = self._new_linker(frames, self._scoring_settings())
                self._register_term_frequencies(linker, term_frequencies)
                self._linker = None  # later calls count their own frequencies again
            else:
                linker = self._linker_for(frames)
            result = linker.inference.predict(threshold_match_probability=threshold, warning_mode="never")
            df = result.as_pandas_dataframe()
            result.drop_table_from_database_and_remove_from_cache()
            if term_frequencies:
                self._close(linker)
        self.warnings_ = list(messages)
        return _pairs(df)

    def predict_new(self, new: pd.DataFrame, existing: pd.DataFrame | pa.Table, threshold: float = 0.0, *,
                    term_frequencies: dict[str, pa.Table] | None = None, in_process: bool = True) -> pd.DataFrame:
        """Scored pairs that involve a ``new`` record: new against new and new against ``existing``.

        ``existing`` holds the records the blocking rules pair with the new ones (the caller finds
        them); pairs among existing records are not scored. ``term_frequencies`` (column -> table of
        the column and ``tf_<column>``) are the frequencies over every record, so the scores equal a
        full run's. Same columns out as ``predict``. A few records (at most ``IN_PROCESS_PAIRS``
        candidate pairs, e.g. a real-time identify) are scored in Python by ``scorer.PairScorer``, equal
        to Splink's scores, without Splink's set-up; ``in_process=False`` always runs Splink."""
        if self.model_json_ is None:
            raise RuntimeError("the model is not trained: call fit() or load it with from_json()")
        if not len(new):
            return pd.DataFrame(columns=["record_a", "record_b", "probability", "match_weight"])
        # Without given frequencies Splink counts them over its input tables: only Splink does that.
        covered = set(term_frequency_columns(self.settings)) <= set(term_frequencies or {})
        if in_process and covered and len(new) * (len(new) + len(existing)) <= IN_PROCESS_PAIRS:
            scorer = self.pair_scorer()
            if scorer is not None:
                self.warnings_ = []
                return scorer.predict_new(self.input_table(new), self.input_table(existing), threshold,
                                          term_frequencies)
        linking = IdentityModel.from_json(self.settings, self.model_json_, link_type="link_only", engine=self.engine,
                                          spark_session=self.spark_session,
                                          duckdb_memory_limit=self.duckdb_memory_limit)
        new_table = self.input_table(new)
        old_table = self.input_table(existing)
        old_table = old_table.filter(pc.invert(pc.is_in(old_table[UNIQUE_ID], value_set=new_table[UNIQUE_ID])))
        both = pa.concat_tables([new_table, old_table])
        with splink_warnings() as messages:
            # Only ids, probability and weight are read back: Splink need not carry every comparison's
            # inputs and intermediate values through (a third faster with ~100k records paired).
            lean = {**self.model_json_, "retain_intermediate_calculation_columns": False,
                    "retain_matching_columns": False}
            linker = linking._new_linker([new_table, both], lean, validate=False)
            linking._register_term_frequencies(linker, term_frequencies or {})
            result = linker.inference.predict(threshold_match_probability=threshold, warning_mode="never")
            df = result.as_pandas_dataframe()
            result.drop_table_from_database_and_remove_from_cache()
        self.warnings_ = list(messages)
        pairs = _pairs(df)
        pairs = pairs[pairs["record_a"] != pairs["record_b"]]
        return pairs.drop_duplicates(["record_a", "record_b"]).reset_index(drop=True)

    def pair_scorer(self) -> Any:
        """The model as an in-process ``scorer.PairScorer`` (built once), or None when its comparisons or
        blocking rules hold SQL the scorer does not run."""
        if self.model_json_ is None:
            raise RuntimeError("the model is not trained: call fit() or load it with from_json()")
        if getattr(self, "_scorer_of", None) is not self.model_json_:
            from accord.identity.scorer import cached_scorer

            self._scorer, self._scorer_of = cached_scorer(self.model_json_, self.settings.blocking_rules), self.model_json_
        return self._scorer

    def scoring_sql(self, pairs: str, threshold: float = 0.0) -> str:
        """DuckDB SQL scoring the record pairs of the relation ``pairs`` as Splink's ``predict`` does:
        Splink's own SQL for the comparison vectors, the match weights with their term-frequency
        adjustments and the prior, so it runs in any DuckDB connection (e.g. the store's, where the
        candidates are) without a linker. ``pairs`` has ``rid_l``, ``rid_r``, every input column as
        ``<column>_l`` and ``<column>_r`` (lists as VARCHAR[]) and, for each term-frequency column,
        ``tf_<column>_l`` and ``tf_<column>_r``. Out: rid_l, rid_r, match_weight, match_probability, for
        the pairs at or above ``threshold`` probability (Splink's filter on the weight)."""
        if self.model_json_ is None:
            raise RuntimeError("the model is not trained: call fit() or load it with from_json()")
        key = _json_key(self.model_json_)
        pending = _PENDING_SQL.pop(key, None)
        template = pending.result() if pending is not None else _scoring_sql_template(key)
        weight = _threshold_weight(threshold)
        where = "" if weight is None else f"WHERE ({template[1]}) >= {weight}"
        return template[0].format(pairs=pairs, where=where)

    def prepare_scoring_sql(self) -> None:
        """Start building ``scoring_sql``'s statement on a thread (once per model and process: ~0.1-0.2 s
        of Python reading Splink's settings), while the caller's store works; ``scoring_sql`` waits for it."""
        if self.model_json_ is None:
            return
        key = _json_key(self.model_json_)
        if key not in _PENDING_SQL and key not in _TEMPLATES:
            _PENDING_SQL[key] = _sql_thread().submit(_scoring_sql_template, key)

    def score_pairs(self, records: pd.DataFrame | pa.Table, pairs: pd.DataFrame, *,
                    term_frequencies: dict[str, pa.Table] | None = None, distinct: bool = False,
                    threshold: float | None = None) -> pd.DataFrame:
        """Every pair of ``pairs`` (record_a, record_b: rids of ``records``) scored, whatever the blocking
        rules say: same columns out as ``predict`` (record_a < record_b), one row per distinct pair.

        The pairs go to Splink as its blocked pairs (``register_blocked_pairs_for_predict``): it
        compares exactly those, reading each record once from ``records``, so the work grows with
        the pairs asked for. ``term_frequencies`` as for ``predict``; by default counted over
        ``records`` (as ``predict`` over them would). ``distinct``: the caller's pairs already hold
        record_a < record_b, each pair once (``predict_through_groups``' do), and are not
        de-duplicated again. ``threshold``: only the pairs scoring at least this probability come
        back (Splink filters them, so the others are never read back)."""
        if self.model_json_ is None:
            raise RuntimeError("the model is not trained: call fit() or load it with from_json()")
        if distinct:
            a = pairs["record_a"].to_numpy(dtype=object)
            b = pairs["record_b"].to_numpy(dtype=object)
        else:
            a, b = pairs["record_a"].astype(str).to_numpy(), pairs["record_b"].astype(str).to_numpy()
            keep = a != b
            a, b = np.minimum(a[keep], b[keep]), np.maximum(a[keep], b[keep])
            unique = pd.DataFrame({"record_a": a, "record_b": b}).drop_duplicates()
            a, b = unique["record_a"].to_numpy(dtype=object), unique["record_b"].to_numpy(dtype=object)
        if not len(a):
            return pd.DataFrame(columns=["record_a", "record_b", "probability", "match_weight"])
        table = self.input_table(records)
        if term_frequencies is None:
            term_frequencies = term_frequency_tables(table, self.settings)
        left, right = pa.array(a, pa.string()), pa.array(b, pa.string())
        for side in (left, right):  # a pair naming no record would silently score nothing
            unknown = pc.invert(pc.is_in(side, value_set=table[UNIQUE_ID].combine_chunks()))
            if pc.any(unknown).as_py():
                raise KeyError(f"score_pairs: {side.filter(unknown)[0].as_py()!r} is not among the records")
        blocked = pa.table({"match_key": pa.repeat(pa.scalar("0"), len(a)), "join_key_l": left, "join_key_r": right})
        # One table of records, each pair named by its two rids: a dedupe linker whatever the model's
        # link type (the scores do not depend on it).
        settings = {**self._scoring_settings(), "link_type": "dedupe_only"}
        with splink_warnings() as messages:
            db_api = self._db_api()
            tag = uuid.uuid4().hex[:8]
            if self.engine == "spark":
                frames = [self.spark_session.createDataFrame(t.to_pandas()) for t in (table, blocked)]
            else:
                frames = [table, blocked]
            sdf, pair_sdf = (db_api.register(f, table_name=f"accord_{name}_{tag}")
                             for f, name in zip(frames, ("records", "pairs")))
            linker = Linker(sdf, settings, log_level=None, validate_settings=False)
            self._register_term_frequencies(linker, term_frequencies or {})
            linker.table_management.register_blocked_pairs_for_predict(pair_sdf)
            # Splink filters on the weight the probability gives, a hair lower here: the probability
            # itself decides below, as it does for every other edge.
            weight = None if threshold is None else _threshold_weight(threshold)
            weight = None if weight is None else weight - 1e-9
            result = linker.inference.predict(threshold_match_weight=weight, warning_mode="never")
            df = result.as_pandas_dataframe()
            result.drop_table_from_database_and_remove_from_cache()
            self._close(linker)
        self.warnings_ = list(messages)
        if threshold is not None:
            df = df[df["match_probability"].astype(float).to_numpy() >= threshold]
        elif len(df) != len(a):
            raise RuntimeError(f"score_pairs: Splink scored {len(df)} of {len(a)} pairs")
        return sort_pairs(pd.DataFrame({
            "record_a": df[f"{UNIQUE_ID}_l"].to_numpy(dtype=object),
            "record_b": df[f"{UNIQUE_ID}_r"].to_numpy(dtype=object),
            "probability": df["match_probability"].astype(float).to_numpy(),
            "match_weight": df["match_weight"].astype(float).to_numpy(),
        }))

    def _scoring_settings(self) -> dict[str, Any]:
        """The model for scoring alone: Splink's output then holds the pair and its score, not every
        compared value and per-comparison weight of both records (a million pairs' worth, read back
        and dropped; ``explain`` keeps them)."""
        return {**self.model_json_, "retain_matching_columns": False,
                "retain_intermediate_calculation_columns": False}

    def _close(self, linker: Linker) -> None:
        """Free a DuckDB linker's memory now. Its in-memory database may hold up to the memory limit,
        and Splink's objects reference each other, so it would linger until a garbage collection,
        beside the next linker's."""
        if self.engine == "duckdb":
            connection = getattr(linker._db_api, "_con", None)
            if connection is not None:
                connection.close()

    def _dialect(self) -> str:
        return "spark" if self.engine == "spark" else "duckdb"

    def explain(self, frames: pd.DataFrame | Sequence[pd.DataFrame], record_a: str, record_b: str, *,
                term_frequencies: dict[str, pa.Table] | None = None) -> dict[str, Any]:
        """One pair's score and each comparison's contribution (level label, Bayes factor, log2 weight).

        Without ``term_frequencies`` (column -> frequency table over every record) the frequencies
        come from ``frames``."""
        return self.explain_pairs(frames, [(record_a, record_b)], term_frequencies=term_frequencies)[0]

    def explain_pairs(self, frames: pd.DataFrame | Sequence[pd.DataFrame], pairs: Sequence[tuple[str, str]], *,
                      term_frequencies: dict[str, pa.Table] | None = None) -> list[dict[str, Any]]:
        """``explain`` for many pairs at once, in the order given: one linker, and one Splink scoring
        call per chunk of pairs (the linker's set-up costs more than scoring dozens of pairs)."""
        with splink_warnings():
            return self._explain_pairs(frames, list(pairs), term_frequencies)

    def _explain_pairs(self, frames: pd.DataFrame | Sequence[pd.DataFrame], pairs: list[tuple[str, str]],
                       term_frequencies: dict[str, pa.Table] | None) -> list[dict[str, Any]]:
        linker = self._linker_for(frames)
        self._register_term_frequencies(linker, term_frequencies or {})
        wanted = {rid for pair in pairs for rid in pair}
        rows: dict[str, dict[str, Any]] = {}
        for frame in self._as_list(frames):
            hits = frame[frame[UNIQUE_ID].astype(str).isin(wanted)]
            for _, row in hits.iterrows():
                rows.setdefault(str(row[UNIQUE_ID]), self._record_dict(row))
        for rid in sorted(wanted - set(rows)):
            raise KeyError(rid)
        for spec in self.settings.comparisons:
            if spec.term_frequency and spec.column not in (term_frequencies or {}):
                linker.table_management.compute_tf_table(spec.column)
        scored: dict[tuple[str, str], pd.Series] = {}
        for start in range(0, len(pairs), EXPLAIN_CHUNK):
            chunk = pairs[start:start + EXPLAIN_CHUNK]
            # Splink scores the cartesian product of two record lists; a chunk keeps it small.
            lefts = list(dict.fromkeys(a for a, _ in chunk))
            rights = list(dict.fromkeys(b for _, b in chunk))
            result = linker.inference.score_pairs([rows[r] for r in lefts], [rows[r] for r in rights])
            frame = result.as_pandas_dataframe()
            result.drop_table_from_database_and_remove_from_cache()
            for _, row in frame.iterrows():
                scored[(str(row[f"{UNIQUE_ID}_l"]), str(row[f"{UNIQUE_ID}_r"]))] = row
        return [self._contributions(linker, scored[(a, b)], rows[a], rows[b], a, b) for a, b in pairs]

    @staticmethod
    def _contributions(linker: Linker, scored: pd.Series, row_a: dict[str, Any], row_b: dict[str, Any],
                       record_a: str, record_b: str) -> dict[str, Any]:
        settings_obj = linker._settings_obj
        prior = settings_obj._probability_two_random_records_match
        contributions = [{
            "comparison": "prior",
            "label": "probability two random records match",
            "bayes_factor": prior / (1 - prior),
            "match_weight": math.log2(prior / (1 - prior)),
        }]
        for comparison in settings_obj.comparisons:
            gamma = int(scored[comparison._gamma_column_name])
            level = comparison._get_comparison_level_by_comparison_vector_value(gamma)
            weight = _number(scored.get(comparison._mw_column_name))
            if weight is None:
                weight = 0.0 if level.is_null_level else float(level._log2_bayes_factor)
            tf_weight = _number(scored.get(comparison._mw_tf_adj_column_name)) or 0.0
            contributions.append({
                "comparison": comparison.output_column_name,
                "label": level.label_for_charts,
                "value_a": row_a.get(comparison.output_column_name),
                "value_b": row_b.get(comparison.output_column_name),
                "bayes_factor": 2 ** (weight + tf_weight),
                "match_weight": weight + tf_weight,
                "term_frequency_weight": tf_weight,
            })
        return {
            "record_a": record_a,
            "record_b": record_b,
            "match_probability": float(scored["match_probability"]),
            "match_weight": float(scored["match_weight"]),
            "contributions": contributions,
        }

    # --- saving ----------------------------------------------------------------------------------

    @classmethod
    def from_json(cls, settings: ModelSettings, model_json: dict[str, Any], **kwargs: Any) -> IdentityModel:
        model = cls(settings, **kwargs)
        model.model_json_ = model_json
        return model

    # --- plumbing --------------------------------------------------------------------------------

    def _settings_creator(self) -> SettingsCreator:
        return SettingsCreator(
            unique_id_column_name=UNIQUE_ID,
            link_type=self.link_type,
            comparisons=[build_comparison(c) for c in self.settings.comparisons],
            blocking_rules_to_generate_predictions=[build_blocking_rule(r) for r in self.settings.blocking_rules],
            retain_intermediate_calculation_columns=True,
            retain_matching_columns=True,
        )

    def _linker_for(self, frames: pd.DataFrame | Sequence[pd.DataFrame]) -> Linker:
        if self.model_json_ is None:
            raise RuntimeError("the model is not trained: call fit() or load it with from_json()")
        if self._linker is None or self._frames_id != id(frames):
            self._linker = self._new_linker(frames, self.model_json_)
        return self._linker

    def _register_term_frequencies(self, linker: Linker, tables: dict[str, pa.Table]) -> None:
        for column, table in tables.items():
            name = f"accord_tf_{uuid.uuid4().hex[:8]}"
            if self.engine == "spark":
                frame = linker._db_api.register(self.spark_session.createDataFrame(table.to_pandas()), table_name=name)
            else:
                frame = linker._db_api.register(table, table_name=name)
            linker.table_management.register_term_frequency_lookup(frame, column)

    def _new_linker(self, frames: pd.DataFrame | pa.Table | Sequence[pd.DataFrame | pa.Table], settings: Any,
                    validate: bool = True) -> Linker:
        """``validate=False``: skip Splink's settings validation (a saved model was validated when it was
        trained; the check parses every comparison's SQL, ~0.3 s a linker)."""
        if isinstance(settings, dict) and settings.get("link_type", self.link_type) != self.link_type:
            settings = {**settings, "link_type": self.link_type}
        db_api = self._db_api()
        tag = uuid.uuid4().hex[:8]  # Spark's catalog outlives one linker: names must not repeat
        tables = [self._arrow(f, i) for i, f in enumerate(self._as_list(frames))]
        if self.engine == "spark":
            sdfs = [db_api.register(self.spark_session.createDataFrame(t.to_pandas()), table_name=f"accord_in_{tag}_{i}")
                    for i, t in enumerate(tables)]
        else:
            sdfs = [db_api.register(t, table_name=f"accord_in_{tag}_{i}") for i, t in enumerate(tables)]
        # log_level=None: Splink leaves logging alone; splink_warnings() collects what it says.
        linker = Linker(sdfs if len(sdfs) > 1 else sdfs[0], settings, log_level=None, validate_settings=validate)
        self._linker, self._frames_id = linker, id(frames)
        return linker

    def _db_api(self):
        if self.engine == "spark":
            from splink import SparkAPI

            if self.spark_session is None:
                raise RuntimeError("engine 'spark' needs a spark_session")
            return SparkAPI(spark_session=self.spark_session)
        import duckdb
        from splink import DuckDBAPI

        # DuckDB takes 80 % of the machine by default; EM over large blocks then holds gigabytes
        # it does not need. A bound makes it spill to a temporary folder instead.
        connection = duckdb.connect()
        connection.execute(f"SET memory_limit = '{self.duckdb_memory_limit}'")
        return DuckDBAPI(connection)

    def input_table(self, frame: pd.DataFrame | pa.Table) -> pa.Table:
        """The columns the model reads (``rid`` first; lists as list<string>, the rest as strings).

        An Arrow table (e.g. straight from the store) is only cast: no row-by-row conversion."""
        cols = [UNIQUE_ID] + [c for c in input_columns(self.settings) if c != UNIQUE_ID]
        list_cols = list_columns(self.settings)
        if isinstance(frame, pa.Table):
            out = {}
            for c in cols:
                kind = pa.list_(pa.string()) if c in list_cols else pa.string()
                column = frame[c] if c in frame.column_names else None
                # A column with no values may come typed as text (an empty PostgreSQL result).
                if column is None or column.null_count == len(column):
                    out[c] = pa.nulls(frame.num_rows, kind)
                else:
                    out[c] = column.cast(kind)
            return pa.table(out)
        data: dict[str, pa.Array] = {}
        for col in cols:
            values = frame[col].tolist() if col in frame else [None] * len(frame)
            if col in list_cols:
                data[col] = pa.array([list(v) if v else None for v in values], pa.list_(pa.string()))
            else:
                data[col] = pa.array([None if _missing(v) else str(v) for v in values], pa.string())
        return pa.table(data)

    def _arrow(self, frame: pd.DataFrame | pa.Table, index: int) -> pa.Table:
        table = self.input_table(frame)
        if self.link_type != "dedupe_only":
            table = table.append_column(SOURCE_DATASET, pa.array([f"dataset_{index}"] * table.num_rows, pa.string()))
        return table

    def _record_dict(self, row: pd.Series) -> dict[str, Any]:
        out: dict[str, Any] = {UNIQUE_ID: str(row[UNIQUE_ID])}
        for col in input_columns(self.settings):
            v = row[col] if col in row.index else None
            if isinstance(v, (list, tuple)):
                out[col] = list(v) or None
            else:
                out[col] = None if _missing(v) else str(v)
        return out

    def _register_labels(self, linker: Linker, labels: pd.DataFrame) -> str:
        table = pa.table({
            f"{UNIQUE_ID}_l": pa.array(labels["record_a"].astype(str).tolist()),
            f"{UNIQUE_ID}_r": pa.array(labels["record_b"].astype(str).tolist()),
            "clerical_match_score": pa.array(labels["is_match"].astype(float).tolist()),
        })
        linker.table_management.register_table(table, "accord_labels", overwrite=True)
        return "accord_labels"

    @staticmethod
    def _as_list(frames: pd.DataFrame | pa.Table | Sequence[pd.DataFrame | pa.Table]) -> list:
        return [frames] if isinstance(frames, (pd.DataFrame, pa.Table)) else list(frames)


def term_frequency_columns(settings: ModelSettings) -> list[str]:
    """Columns whose comparisons adjust for term frequency."""
    return list(dict.fromkeys(s.column for s in settings.comparisons if s.term_frequency))


def term_frequency_tables(records: pd.DataFrame | pa.Table, settings: ModelSettings) -> dict[str, pa.Table]:
    """Splink's term-frequency tables of ``records``: per column with term-frequency adjustments,
    each non-empty value and ``tf_<column>``, its share of the column's non-empty values."""
    out = {}
    for col in term_frequency_columns(settings):
        if isinstance(records, pa.Table):
            values = records[col] if col in records.column_names else pa.chunked_array([], pa.string())
        else:
            values = pa.array(records[col].to_numpy(dtype=object), pa.string(), from_pandas=True) \
                if col in records else pa.chunked_array([], pa.string())
        values = pc.drop_null(pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.string()), values))
        counts = pc.value_counts(values)
        found = counts.field("values") if len(counts) else pa.array([], pa.string())
        n = counts.field("counts").to_numpy() if len(counts) else np.zeros(0)
        total = n.sum()
        out[col] = pa.table({col: found, f"tf_{col}": pa.array(n / total if total else n.astype(float),
                                                                  pa.float64())})
    return out


def _pairs(df: pd.DataFrame) -> pd.DataFrame:
    """Splink's predictions as (record_a < record_b, probability, match_weight), sorted."""
    a, b = df[f"{UNIQUE_ID}_l"].astype(str), df[f"{UNIQUE_ID}_r"].astype(str)
    swap = a > b
    return sort_pairs(pd.DataFrame({
        "record_a": a.where(~swap, b).to_numpy(),
        "record_b": b.where(~swap, a).to_numpy(),
        "probability": df["match_probability"].astype(float).to_numpy(),
        "match_weight": df["match_weight"].astype(float).to_numpy(),
    }))


def sort_pairs(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame.sort_values(["record_a", "record_b"], kind="stable")`` with a fresh index, sorted by Arrow:
    a million pairs of record names in a third of pandas' time (UTF-8's byte order is the code point
    order Python compares strings by). Columns that are not all text take pandas' sort."""
    if len(frame) < 2:
        return frame.reset_index(drop=True)
    try:
        keys = pa.table({c: pa.array(frame[c].to_numpy(dtype=object), pa.string(), from_pandas=True)
                         for c in ("record_a", "record_b")})
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return frame.sort_values(["record_a", "record_b"], kind="stable").reset_index(drop=True)
    order = pc.sort_indices(keys, sort_keys=[("record_a", "ascending"), ("record_b", "ascending")])
    return frame.iloc[order.to_numpy()].reset_index(drop=True)


def _number(v: Any) -> float | None:
    return None if v is None or _missing(v) else float(v)


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA or v is pd.NaT or v == ""


def _json_key(model_json: dict[str, Any]) -> str:
    import json

    return json.dumps(model_json, sort_keys=True, default=str)


def _threshold_weight(threshold: float) -> float | None:
    """Splink's filter of ``predict(threshold_match_probability=threshold)``, as a match weight."""
    from splink.internals.misc import threshold_args_to_match_weight

    return threshold_args_to_match_weight(threshold, None)


_PENDING_SQL: dict[str, Future] = {}
_TEMPLATES: set[str] = set()
"""Models whose scoring statement was built (kept by ``_scoring_sql_template``'s cache)."""


@lru_cache(maxsize=1)
def _sql_thread() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="accord-scoring-sql")


@lru_cache(maxsize=8)
def _scoring_sql_template(model_key: str) -> tuple[str, str]:
    """``IdentityModel.scoring_sql``'s statement (``{pairs}``, ``{where}`` left open) and its match-weight
    expression, from Splink's settings objects: built once per model (reading them parses every
    level's SQL, ~50 ms)."""
    import json

    from splink.internals.dialects import SplinkDialect
    from splink.internals.predict import _combine_prior_and_mws

    settings = SettingsCreator.from_path_or_dict(json.loads(model_key)).get_settings("duckdb")
    comparisons = settings.core_model_settings.comparisons
    vectors = ["rid_l", "rid_r"]
    parts = ["rid_l", "rid_r"]
    terms: list[str] = []
    for comparison in comparisons:
        vectors += comparison._columns_to_select_for_comparison_vector_values(False)
        parts += comparison._columns_to_select_for_match_weight_parts(False, False)
        terms += comparison._match_weight_columns_to_sum
    weight, probability = _combine_prior_and_mws(
        settings.core_model_settings.probability_two_random_records_match, terms, SplinkDialect.from_string("duckdb"))
    sql = (f"WITH __accord_vectors AS (SELECT {', '.join(vectors)} FROM {{pairs}}), "
           f"__accord_parts AS (SELECT {', '.join(parts)} FROM __accord_vectors) "
           f"SELECT rid_l, rid_r, {weight} AS match_weight, {probability} AS match_probability "
           f"FROM __accord_parts {{where}}")
    _TEMPLATES.add(model_key)
    return sql.replace("{", "{{").replace("}", "}}").replace("{{pairs}}", "{pairs}").replace("{{where}}", "{where}"), weight
