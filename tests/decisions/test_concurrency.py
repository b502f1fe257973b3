"""Frequency caps and the decision log hold when many threads decide at once while the log writer writes."""

from __future__ import annotations

import threading

from accord.decisions.log import LogWriter
from tests.decisions.helpers import offered, request

THREADS = 8
PER_THREAD = 10


def test_a_frequency_cap_holds_under_concurrent_requests_for_one_customer(store, store_url, engine_for):
    engine = engine_for({"policy": "rules", "guardrails": {"frequency_cap": {"max": 1000, "days": 7}},
                         "offers": [{"id": "a", "frequency_cap": {"max": 3, "days": 7}}, {"id": "b", "priority": -1}]})
    engine.refresh(store)
    writer = LogWriter(engine.log, store_url, interval=0.001)  # writes while the threads decide
    writer.start()
    given: list[list[str]] = []
    lock = threading.Lock()
    start = threading.Barrier(THREADS)

    def decide() -> None:
        own = store.reader()
        start.wait()
        for _ in range(PER_THREAD):
            got = offered(engine.decide(own, request("cus_1"), write=False))
            with lock:
                given.append(got)

    threads = [threading.Thread(target=decide) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    writer.stop()
    assert (sum(g.count("a") for g in given), sum(g.count("b") for g in given)) == (3, THREADS * PER_THREAD)
    logged = store.fetchall("SELECT o.offer_id, COUNT(*) FROM decision_offers o JOIN decisions d "
                            "ON d.decision_id = o.decision_id WHERE d.unit = 'cus_1' GROUP BY o.offer_id ORDER BY 1")
    assert logged == [("a", 3), ("b", THREADS * PER_THREAD)]
