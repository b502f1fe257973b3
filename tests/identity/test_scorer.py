"""The in-process scorer gives Splink's match weights and probabilities (identity/scorer.py)."""

from __future__ import annotations

import json
import math
import random

import duckdb
import pandas as pd
import pyarrow as pa
import pytest

from accord.identity.model import IdentityModel, sort_pairs, term_frequency_tables
from accord.identity.scorer import PairScorer, damerau_levenshtein, jaro_winkler, levenshtein
from accord.identity.settings import ComparisonSpec, ModelSettings, default_model_settings
from accord.identity.stage import prepare
from tests.identity.people import population

TOLERANCE = 1e-9


def _strings(seed: int, n: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    alphabet = "abcdeé"
    word = lambda: "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 10)))  # noqa: E731
    return [(word(), word()) for _ in range(n)] + [("martha", "marhta"), ("dixon", "dicksonx"), ("", ""),
                                                      ("a", "a"), ("ca", "abc")]


def test_string_functions_equal_duckdbs():
    pairs = _strings(11, 20_000)
    con = duckdb.connect()
    con.execute("CREATE TABLE p (a TEXT, b TEXT)")
    con.executemany("INSERT INTO p VALUES (?, ?)", pairs)
    rows = con.execute("SELECT a, b, jaro_winkler_similarity(a, b), levenshtein(a, b), damerau_levenshtein(a, b) "
                       "FROM p").fetchall()
    assert [(a, b, jaro_winkler(a, b), levenshtein(a, b), damerau_levenshtein(a, b)) for a, b, *_ in rows] == rows


def _standardized() -> pd.DataFrame:
    records, _, _ = population(seed=3, people=120)
    frame = pd.DataFrame(records)
    frame["rid"] = frame["source"] + ":" + frame["record_key"]
    for col in ("emails", "phones"):
        frame[col] = [json.dumps(v) for v in frame[col]]
    return prepare(frame, "US")


def _every_kind() -> ModelSettings:
    """A model with every comparison kind Accord's settings offer, term frequencies on three."""
    return ModelSettings(
        comparisons=[
            ComparisonSpec(column="std_given_name", kind="name", thresholds=[0.92, 0.88], term_frequency=True,
                           group_column="std_name_group"),
            ComparisonSpec(column="std_family_name", kind="name", term_frequency=True),
            ComparisonSpec(column="std_email", kind="email", list_column="std_emails", user_column="std_email_user",
                           term_frequency=True),
            ComparisonSpec(column="std_phone", kind="array", list_column="std_phones"),
            ComparisonSpec(column="std_dob", kind="dob"),
            ComparisonSpec(column="std_postcode", kind="levenshtein", thresholds=[1, 2]),
            ComparisonSpec(column="std_street", kind="jaro_winkler", thresholds=[0.9, 0.7]),
            ComparisonSpec(column="std_city", kind="exact", term_frequency=True),
            ComparisonSpec(column="std_house_number", kind="damerau_levenshtein", thresholds=[1]),
        ],
        blocking_rules=[["std_email"], ["std_phone"], ["std_dob"], ["std_family_name", "std_given_initial"],
                        ["std_postcode"]],
        em_blocking_rules=[["std_dob"], ["std_postcode"], ["std_family_name"]],
        prior_rules=[["std_email"], ["std_given_name", "std_family_name", "std_dob"]],
        u_max_pairs=1e5,
    )


@pytest.fixture(scope="module")
def standardized() -> pd.DataFrame:
    return _standardized()


@pytest.fixture(scope="module", params=["default", "every_kind"])
def model(request, standardized) -> IdentityModel:
    settings = default_model_settings().model_copy(update={"u_max_pairs": 1e5}) \
        if request.param == "default" else _every_kind()
    return IdentityModel(settings).fit(standardized)


def _variants(standardized: pd.DataFrame, seed: int) -> pd.DataFrame:
    """A changed copy of each record (rid ``v:<rid>``): a typo, a dropped or swapped character, a
    missing field, a birth date a few days, months or years off, another digit in the postcode, so
    that pairs of a record and its variant reach every level of every comparison."""
    rng = random.Random(seed)

    def typo(text):
        if not isinstance(text, str) or len(text) < 3:
            return text
        i = rng.randrange(1, len(text) - 1)
        return rng.choice([text[:i] + text[i + 1] + text[i] + text[i + 2:], text[:i] + text[i + 1:],
                           text[:i] + "x" + text[i + 1:], text[: len(text) // 2] + "zzq"])

    def dob(text):
        if not isinstance(text, str):
            return text
        y, m, d = text.split("-")
        return rng.choice([f"{y}-{m}-{int(d) % 28 + 1:02d}", f"{y}-{int(m) % 12 + 1:02d}-{d}",
                           f"{int(y) + rng.choice([1, 5, 30])}-{m}-{d}", f"{y}-{d}-{m}", "not a date"])

    rows = []
    for row in standardized.to_dict("records"):
        row = dict(row)
        row["rid"] = f"v:{row['rid']}"
        for col in ("std_given_name", "std_family_name", "std_street", "std_email", "std_email_user", "std_postcode",
                    "std_house_number"):
            if rng.random() < 0.35:
                row[col] = typo(row[col])
        if rng.random() < 0.5:
            row["std_dob"] = dob(row["std_dob"])
        if rng.random() < 0.3 and isinstance(row["std_emails"], list):
            row["std_emails"] = row["std_emails"] + ["other@mail.com"] if rng.random() < 0.5 else ["x@y.org"]
        for col in ("std_given_name", "std_family_name", "std_city", "std_dob", "std_email", "std_phones", "std_street",
                    "std_postcode", "std_house_number"):
            if rng.random() < 0.08:
                row[col] = None
        if rng.random() < 0.2:
            row["std_city"] = rng.choice(["springfield", "salem", "madison"])
        rows.append(row)
    return pd.DataFrame(rows)


def _pairs(rids: list[str], seed: int, n: int) -> pd.DataFrame:
    """Each record with its variant, random pairs, and near pairs (neighbours in rid order are often
    one person's two records)."""
    rng = random.Random(seed)
    pairs = {tuple(sorted(rng.sample(rids, 2))) for _ in range(n)}
    ordered = sorted(rids)
    pairs |= {(a, b) for a, b in zip(ordered, ordered[1:])}
    pairs |= {tuple(sorted((r, f"v:{r}"))) for r in rids}
    return pd.DataFrame(sorted(pairs), columns=["record_a", "record_b"])


def test_match_weights_and_probabilities_equal_splinks(model, standardized):
    frequencies = term_frequency_tables(standardized, model.settings)
    scorer = model.pair_scorer()
    assert scorer is not None
    blocked = model.predict(standardized, term_frequencies=frequencies)
    records = pd.concat([standardized, _variants(standardized, 9)], ignore_index=True)
    asked = _pairs(standardized["rid"].tolist(), 5, 3000)
    splink = pd.concat([blocked, model.score_pairs(records, asked, term_frequencies=frequencies)])
    assert len(splink) > 3000
    rows = {r["rid"]: r for r in model.input_table(records).to_pylist()}
    tfs = {c: dict(zip(t.column(c).to_pylist(), t.column(f"tf_{c}").to_pylist())) for c, t in frequencies.items()}
    weights = [scorer.score(rows[a], rows[b], tfs) for a, b in zip(splink["record_a"], splink["record_b"])]
    # Both orders: Splink's comparisons are symmetric, and so must the scorer's be.
    reverse = [scorer.score(rows[b], rows[a], tfs) for a, b in zip(splink["record_a"], splink["record_b"])]
    assert max(abs(w - s) for (w, _), s in zip(weights, splink["match_weight"])) < TOLERANCE
    assert max(abs(p - s) for (_, p), s in zip(weights, splink["probability"])) < TOLERANCE
    assert max(abs(w - r) for (w, _), (r, _) in zip(weights, reverse)) < TOLERANCE
    # The pairs cover every level of every comparison (else the agreement says little).
    covered = {(c.name, i) for a, b in zip(splink["record_a"], splink["record_b"])
               for c in scorer.comparisons_ for i in [_level(c, rows[a], rows[b])]}
    assert covered == {(c.name, i) for c in scorer.comparisons_ for i in range(len(c.levels))}


def _level(comparison, left, right) -> int:
    for i, level in enumerate(comparison.levels):
        if level.condition is None or level.condition(left, right):
            return i
    raise AssertionError("no level matched")


def test_predict_new_in_process_equals_splink(model, standardized):
    frequencies = term_frequency_tables(standardized, model.settings)
    new = standardized.iloc[:3].copy()
    new["rid"] = ["api:n1", "api:n2", "api:n3"]
    existing = standardized.iloc[3:]
    fast = model.predict_new(new, existing, 0.01, term_frequencies=frequencies)
    slow = model.predict_new(new, existing, 0.01, term_frequencies=frequencies, in_process=False)
    assert len(slow) > 0
    assert fast[["record_a", "record_b"]].values.tolist() == slow[["record_a", "record_b"]].values.tolist()
    assert (fast["match_weight"] - slow["match_weight"]).abs().max() < TOLERANCE
    assert (fast["probability"] - slow["probability"]).abs().max() < TOLERANCE


def test_sql_the_scorer_cannot_run_keeps_splink():
    model_json = {"link_type": "dedupe_only", "probability_two_random_records_match": 0.01, "comparisons": [{
        "output_column_name": "x", "comparison_levels": [
            {"sql_condition": '"x_l" IS NULL OR "x_r" IS NULL', "is_null_level": True},
            {"sql_condition": 'substr("x_l", 1, 2) = substr("x_r", 1, 2)', "m_probability": 0.9, "u_probability": 0.1},
            {"sql_condition": "ELSE", "m_probability": 0.1, "u_probability": 0.9}]}]}
    assert PairScorer.for_model(model_json, [["x"]]) is None
    ok = {**model_json, "comparisons": [{**model_json["comparisons"][0], "comparison_levels": [
        model_json["comparisons"][0]["comparison_levels"][0],
        {"sql_condition": '"x_l" = "x_r"', "m_probability": 0.9, "u_probability": 0.1},
        model_json["comparisons"][0]["comparison_levels"][2]]}]}
    assert PairScorer.for_model(ok, ["l.x = r.x"]) is None  # a blocking rule in SQL
    scorer = PairScorer.for_model(ok, [["x"]])
    assert scorer is not None
    assert scorer.score({"x": "a"}, {"x": "a"})[0] == pytest.approx(
        math.log2(0.01 / 0.99) + math.log2(0.9 / 0.1), abs=1e-12)



def test_pairs_sort_as_pandas_sorts_them_ties_and_any_script_included():
    rng = random.Random(5)
    names = ["crm:1", "crm:10", "crm:2", "shop:ä", "shop:z", "shop:Z", "web:é1", "web:\u4e2d", "pos:😀", "a", ""]
    frame = pd.DataFrame({"record_a": [rng.choice(names) for _ in range(400)],
                          "record_b": [rng.choice(names) for _ in range(400)],
                          "probability": [rng.random() for _ in range(400)]}, index=range(1000, 1400))
    expected = frame.sort_values(["record_a", "record_b"], kind="stable").reset_index(drop=True)
    pd.testing.assert_frame_equal(sort_pairs(frame), expected)  # equal pairs keep their order
    numbers = pd.DataFrame({"record_a": [3, 1, 2], "record_b": [1, 1, 1]})  # not text: pandas sorts
    assert sort_pairs(numbers)["record_a"].tolist() == [1, 2, 3]
    assert sort_pairs(frame.iloc[:1]).index.tolist() == [0]


def test_scoring_sql_equals_splinks_predict(model, standardized):
    """IdentityModel.scoring_sql runs Splink's own SQL in another DuckDB connection: the same scores."""
    frequencies = term_frequency_tables(standardized, model.settings)
    splink = model.predict(standardized, term_frequencies=frequencies)
    assert len(splink) > 100
    con = duckdb.connect()
    records = model.input_table(standardized)
    con.register("records", records)
    con.register("asked", pa.table({"a": splink["record_a"].tolist(), "b": splink["record_b"].tolist()}))
    selects, joins = ["l.rid AS rid_l", "r.rid AS rid_r"], []
    for c in records.column_names[1:]:
        selects.append(f"l.{c} AS {c}_l, r.{c} AS {c}_r")
    for i, (c, table) in enumerate(frequencies.items()):
        con.register(f"tf{i}", table)
        selects.append(f"tl{i}.tf_{c} AS tf_{c}_l, tr{i}.tf_{c} AS tf_{c}_r")
        joins.append(f"LEFT JOIN tf{i} tl{i} ON tl{i}.{c} = l.{c} LEFT JOIN tf{i} tr{i} ON tr{i}.{c} = r.{c}")
    pairs = (f"(SELECT {', '.join(selects)} FROM asked p JOIN records l ON l.rid = p.a "
             f"JOIN records r ON r.rid = p.b {' '.join(joins)})")
    ours = con.execute(model.scoring_sql(pairs) + " ORDER BY rid_l, rid_r").fetchdf()
    assert ours["rid_l"].tolist() == splink["record_a"].tolist()
    assert ours["rid_r"].tolist() == splink["record_b"].tolist()
    assert (ours["match_weight"] - splink["match_weight"]).abs().max() < 1e-12
    assert (ours["match_probability"] - splink["probability"]).abs().max() < 1e-12
    # Splink's threshold: on the match weight, pairs at or above it kept.
    threshold = float(splink["probability"].median())
    kept = con.execute(model.scoring_sql(pairs, threshold)).fetchdf()
    assert len(kept) == int((splink["probability"] >= threshold).sum()) < len(splink)
