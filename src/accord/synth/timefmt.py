"""Times as int64 seconds since the Unix epoch, rendered to ISO 8601 in bulk."""

from __future__ import annotations

from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

DAY = 86400


def epoch_seconds(d: date) -> int:
    return (d - date(1970, 1, 1)).days * DAY


def iso(seconds: np.ndarray) -> pa.Array:
    """``2024-03-07T12:34:56Z`` for each value (pc.strftime is ~6x slower than this cast)."""
    text = pa.array(np.asarray(seconds, dtype=np.int64)).cast(pa.timestamp("s")).cast(pa.string())
    return pc.binary_join_element_wise(pc.replace_substring(text, " ", "T"), "Z", "")


def iso_date(days: np.ndarray) -> pa.Array:
    """``1984-03-07`` for datetime64[D] values."""
    return pa.array(np.asarray(days, dtype="datetime64[D]")).cast(pa.string())
