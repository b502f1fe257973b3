"""Invalidating profile documents removes exactly the documents of the customers named."""

from datetime import datetime

import pytest

from accord.profiles.lookup import INVALIDATION_LIST_LIMIT, invalidate_profile_documents


def _documents(store, n: int) -> list[str]:
    ids = [f"cus_{i:08d}" for i in range(1, n + 1)]
    store.executemany("INSERT INTO profile_documents (customer_id, document, built_at) VALUES (?, ?, ?)",
                      [(c, "{}", datetime(2025, 1, 1)) for c in ids])
    return ids


def _left(store) -> list[str]:
    return [r[0] for r in store.fetchall("SELECT customer_id FROM profile_documents ORDER BY customer_id")]


@pytest.mark.parametrize("n", [2, INVALIDATION_LIST_LIMIT + 1, 600])
def test_invalidating_documents_removes_those_of_the_customers_named_and_no_other(store, n):
    ids = _documents(store, 2 * n)
    named = ids[::2] + ["cus_99999999"]  # an id without a document is no error
    with store.transaction():
        invalidate_profile_documents(store, named)
    assert _left(store) == ids[1::2]
