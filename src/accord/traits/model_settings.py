"""The ``clv:`` and ``churn:`` sections of accord.yaml: settings of the model traits (docs/models.md).

```yaml
clv:
  enabled: true
  purchase_events: null          # event names that are purchases; null: every event carrying revenue
  unit: week                     # the time unit the models are fitted in: day | week
  horizons: [90d, 365d]          # traits clv_expected_purchases_<h> and clv_value_<h> for each
  annual_discount_rate: 0.10     # future revenue is discounted to today at this yearly rate
  penalizer: 0.0                 # L2 penalty on the parameters; a little (0.001) steadies small samples
  min_customers: 50              # fewer purchasers: no fit, a warning in the run report
  as_of: null                    # the end of the observation period; null: the last purchase day
churn:
  enabled: true
  window_days: 90                # churned = no activity in the window_days after a cutoff
  label: activity                # activity: any customer event counts | purchase: only purchases do
  exclude_events: [sent, ...]    # events done to a customer (mail sent), not by them
  purchase_events: null          # as in clv
  lookback_days: 365             # a customer is scored when active in this many days before the cutoff
  snapshots: 4                   # cutoffs one window apart: oldest train, next-to-last calibrates, last tests
  calibration: sigmoid           # sigmoid (Platt) | isotonic
  top_reasons: 3
  min_rows: 100                  # fewer labelled rows per snapshot: no model, a warning
  as_of: null                    # null: the day after the last event
```
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

HORIZON = re.compile(r"^([1-9][0-9]{0,4})([dwy])$")
_UNIT_DAYS = {"d": 1, "w": 7, "y": 365}
DEFAULT_EXCLUDED_EVENTS = ["sent", "delivered", "bounce", "Email Sent", "Email Delivered", "Email Bounced"]


def horizon_days(horizon: str) -> int:
    """'90d' -> 90, '26w' -> 182, '1y' -> 365."""
    m = HORIZON.match(horizon)
    if not m:
        raise ValueError(f"expected a horizon like 90d, 26w or 1y; got {horizon!r}")
    return int(m.group(1)) * _UNIT_DAYS[m.group(2)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _naive_utc(v: datetime | None) -> datetime | None:
    if v is not None and v.tzinfo is not None:
        v = v.astimezone(timezone.utc).replace(tzinfo=None)
    return v


def _listify(v: Any) -> Any:
    return [v] if isinstance(v, str) else v


class ClvSettings(_Strict):
    """Lifetime value: BG/NBD + Gamma-Gamma on purchase events."""

    enabled: bool = True
    purchase_events: list[str] | None = None
    """Event names that are purchases; null: every event that carries a revenue value."""
    unit: Literal["day", "week"] = "week"
    horizons: list[str] = Field(default_factory=lambda: ["365d"], min_length=1)
    annual_discount_rate: float = Field(0.10, ge=0, le=1)
    penalizer: float = Field(0.0, ge=0)
    min_customers: int = Field(50, ge=2)
    as_of: datetime | None = None

    @field_validator("purchase_events", mode="before")
    @classmethod
    def _events(cls, v: Any) -> Any:
        return _listify(v)

    @field_validator("horizons", mode="before")
    @classmethod
    def _horizons(cls, v: Any) -> Any:
        v = _listify(v)
        if isinstance(v, list):
            for h in v:
                horizon_days(str(h))
            if len(set(map(str, v))) != len(v):
                raise ValueError("a horizon is given twice")
        return v

    @field_validator("as_of")
    @classmethod
    def _utc(cls, v: datetime | None) -> datetime | None:
        return _naive_utc(v)

    @property
    def unit_days(self) -> float:
        return 7.0 if self.unit == "week" else 1.0


class ChurnSettings(_Strict):
    """Churn risk: LightGBM on activity features as of past cutoffs, labelled by what followed."""

    enabled: bool = True
    window_days: int = Field(90, ge=7, le=730)
    label: Literal["activity", "purchase"] = "activity"
    exclude_events: list[str] = Field(default_factory=lambda: list(DEFAULT_EXCLUDED_EVENTS))
    purchase_events: list[str] | None = None
    lookback_days: int = Field(365, ge=7)
    snapshots: int = Field(4, ge=3, le=24)
    calibration: Literal["sigmoid", "isotonic"] = "sigmoid"
    top_reasons: int = Field(3, ge=1, le=10)
    min_rows: int = Field(100, ge=10)
    as_of: datetime | None = None

    @field_validator("purchase_events", "exclude_events", mode="before")
    @classmethod
    def _events(cls, v: Any) -> Any:
        return _listify(v)

    @field_validator("as_of")
    @classmethod
    def _utc(cls, v: datetime | None) -> datetime | None:
        return _naive_utc(v)
