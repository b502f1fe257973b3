"""The collection hooks other stages plug into: before the commit (may drop rows) and after it."""

from __future__ import annotations

from typing import Any

from accord.api.hooks import Committed
from accord.api.messages import Collected
from accord.store.backend import Store


def test_after_commit_hook_sees_the_committed_events_and_their_customers(make_api: Any) -> None:
    api = make_api()
    seen: list[tuple[list[str], dict[str, str]]] = []

    def hook(store: Store, committed: Committed) -> None:
        seen.append(([e["event_id"] for e in committed.event_dicts()], committed.customer_ids(store)))

    api.client.app.state.collect_hooks.after_commit.append(hook)
    api.post("/v1/batch", {"batch": [
        {"type": "identify", "messageId": "m1", "userId": "u1", "anonymousId": "a1"},
        {"type": "track", "messageId": "m2", "anonymousId": "a1", "event": "Viewed"},
        {"type": "track", "messageId": "m3", "anonymousId": "stranger", "event": "Viewed"}]})
    api.client.app.state.store_worker.wait_for_hooks()  # hooks run on their own thread after the answer
    assert seen == [(["m1", "m2", "m3"], {"m1": "cus_00000001", "m2": "cus_00000001"})]


def test_failing_after_commit_hook_does_not_fail_the_request(make_api: Any) -> None:
    api = make_api()

    def hook(store: Store, committed: Committed) -> None:
        raise RuntimeError("boom")

    api.client.app.state.collect_hooks.after_commit.append(hook)
    r = api.post("/v1/track", {"messageId": "m1", "userId": "u1", "event": "E"})
    assert (r.status_code, api.rows("SELECT event_id FROM events")) == (200, [("m1",)])


def test_before_commit_hook_decides_what_is_stored(make_api: Any) -> None:
    api = make_api()

    def drop_u2(store: Store, collected: Collected) -> Collected:
        return Collected([e for e in collected.events if e[7] != "u2"], collected.signals)

    api.client.app.state.collect_hooks.before_commit.append(drop_u2)
    r = api.post("/v1/batch", {"batch": [{"type": "track", "messageId": "m1", "userId": "u1", "event": "E"},
                                         {"type": "track", "messageId": "m2", "userId": "u2", "event": "E"}]})
    assert (r.status_code, api.rows("SELECT event_id FROM events")) == (200, [("m1",)])
