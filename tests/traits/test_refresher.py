"""The trait refresher's queue on its own: coalescing and its bound (no store needed before it starts)."""

from __future__ import annotations

from accord.traits.refresher import TraitRefresher
from accord.traits.settings import TraitsSettings


def refresher(**realtime: object) -> TraitRefresher:
    return TraitRefresher(TraitsSettings.model_validate({"realtime": realtime}))


def test_repeated_marks_of_one_identifier_wait_as_one() -> None:
    r = refresher()
    for _ in range(5):
        r.mark([("user_id", "u1"), ("anonymous_id", "a1")], ["cus_1"])
    assert r.status().pending == 3


def test_beyond_max_pending_new_entries_are_dropped_and_counted() -> None:
    r = refresher(max_pending=2)
    r.mark([("user_id", "u1"), ("user_id", "u2"), ("user_id", "u3")])
    r.mark([("user_id", "u1")])  # already waiting: not a drop
    status = r.status()
    assert (status.pending, status.dropped) == (2, 1)


def test_a_stopped_refresher_without_drain_forgets_what_was_pending() -> None:
    r = refresher()
    r.mark([("user_id", "u1")])
    assert r.stop(drain=False) and r.status().pending == 0 and r.wait_idle(timeout=1)


class _Connection:
    """Stands in for the refresher's store connection: the update below never touches it."""

    def close(self) -> None:
        pass


def test_pause_waits_for_the_batch_being_recomputed_and_holds_off_the_next() -> None:
    """Erasure pauses the refresher: a batch that read a person's events before the erasure must not
    write their traits after it, and no batch may start while the erasure runs."""
    import threading

    started, release = threading.Event(), threading.Event()
    batches: list[list[str]] = []

    def update(store: object, cfg: object, ids: list[str]) -> int:
        batches.append(list(ids))
        started.set()
        release.wait(5)
        return len(ids)

    r = TraitRefresher(TraitsSettings.model_validate({"realtime": {"min_interval_seconds": 0}}), update=update)
    r.start(_Connection())  # type: ignore[arg-type]
    try:
        r.mark(customer_ids=["cus_1"])
        assert started.wait(5)
        paused = threading.Event()
        pauser = threading.Thread(target=lambda: (r.pause(), paused.set()))
        pauser.start()
        assert not paused.wait(0.3), "pause returned while a batch was still being recomputed"
        release.set()
        assert paused.wait(5)
        r.mark(customer_ids=["cus_2"])  # arrives during the "erasure"
        assert not r.wait_idle(timeout=0.3) and batches == [["cus_1"]]
        r.resume()
        assert r.wait_idle(timeout=5) and batches == [["cus_1"], ["cus_2"]]
    finally:
        release.set()
        r.stop()


class _Recording:
    """A store connection that records when each statement ran."""

    def __init__(self) -> None:
        import time

        self.clock = time.monotonic
        self.ran: list[float] = []

    def execute(self, sql: str, params: object = ()) -> None:
        self.ran.append(self.clock())

    def close(self) -> None:
        pass


def _giving_way_to(busy: object, update: object) -> tuple[TraitRefresher, "_Recording"]:
    """A started refresher on a recording connection, giving way to ``busy``, running ``update``."""
    store = _Recording()
    r = TraitRefresher(TraitsSettings.model_validate({"realtime": {"min_interval_seconds": 0}}), update=update)
    r.give_way_to = busy
    r.start(store)  # type: ignore[arg-type]
    return r, store


def test_each_refresh_statement_waits_while_the_collection_hook_is_busy() -> None:
    """The event -> webhook path comes first: while the segments hook holds ``busy``, the refresher runs
    no statement; once it clears, the refresh goes on."""
    import threading
    import time

    from accord.api.hooks import Busy

    busy = Busy()
    done = threading.Event()

    def update(store: _Recording, cfg: object, ids: list[str]) -> int:
        for _ in range(3):
            store.execute("SELECT 1")
        done.set()
        return len(ids)

    r, store = _giving_way_to(busy, update)
    try:
        with busy:
            r.mark(customer_ids=["cus_1"])
            assert not done.wait(0.15) and store.ran == [], "a statement ran while the hook was busy"
            cleared = time.monotonic()
        assert done.wait(5) and len(store.ran) == 3 and min(store.ran) >= cleared
    finally:
        r.stop()


def test_giving_way_is_bounded_so_a_steady_stream_of_events_never_stops_refreshes() -> None:
    import threading
    import time

    from accord.api.hooks import Busy
    from accord.traits.refresher import GIVE_WAY_SECONDS

    busy = Busy()
    done = threading.Event()

    def update(store: _Recording, cfg: object, ids: list[str]) -> int:
        store.execute("SELECT 1")
        store.execute("SELECT 2")
        done.set()
        return len(ids)

    r, store = _giving_way_to(busy, update)
    try:
        with busy:  # never clears while the refresh runs
            t0 = time.monotonic()
            r.mark(customer_ids=["cus_1"])
            assert done.wait(5), "the refresher waited for good"
            assert store.ran[0] - t0 >= GIVE_WAY_SECONDS * 0.9
            assert store.ran[1] - store.ran[0] >= GIVE_WAY_SECONDS * 0.9
        assert r.wait_idle(timeout=5) and r.status().refreshed_customers == 1
    finally:
        r.stop()


def test_busy_nests_and_clears_only_when_every_holder_left() -> None:
    import threading

    from accord.api.hooks import Busy

    busy = Busy()
    assert busy.wait_clear(0) and not busy.busy
    with busy:
        with busy:
            assert busy.busy and not busy.wait_clear(0.05)
        assert busy.busy
    assert not busy.busy and busy.wait_clear(0)
    holder_in, holder_out = threading.Event(), threading.Event()

    def hold() -> None:
        with busy:
            holder_in.set()
            holder_out.wait(5)

    t = threading.Thread(target=hold)
    t.start()
    assert holder_in.wait(5)
    threading.Timer(0.1, holder_out.set).start()
    assert busy.wait_clear(5) and not busy.busy  # woken when the other thread left
    t.join()
