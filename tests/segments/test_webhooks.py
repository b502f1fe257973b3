"""Webhooks against a real HTTP receiver on 127.0.0.1: signed, retried with backoff, dead-lettered,
replayed, and sent by the delivery thread as soon as it is woken."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from accord.clock import utcnow
from accord.errors import AccordError
from accord.segments.realtime import on_event
from accord.segments.webhooks import DeliveryWorker, Sender, dead_letters, drain, replay, sign, verify
from tests.segments.conftest import World

SECRET = "s3cret"


class Receiver:
    """An HTTP server thread that records every POST and answers with the next queued status (200 when empty)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        self.received = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append({"headers": dict(self.headers), "body": body, "path": self.path})
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
                receiver.received.set()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def hooks_yaml(url: str, extra: str = "") -> str:
    return f"""  definitions:
    - name: vips
      condition: "vip"
    - name: buyers
      condition: "orders >= 1"
  webhooks:
    - name: crm
      url: {url}
      secret: {SECRET}
      max_attempts: 3
      backoff_seconds: 10
{extra}"""


def _enter_vip(world: World, cfg: Any) -> None:
    world.customer("cus_1", traits={"vip": True})
    on_event(world.store, cfg, "cus_1")


def test_a_segment_change_is_posted_signed_with_the_body_hmac(world: World, config_for, receiver: Receiver) -> None:
    cfg = config_for(hooks_yaml(receiver.url))
    _enter_vip(world, cfg)
    assert drain(world.store, cfg).as_dict() == {"delivered": 1, "retrying": 0, "dead": 0}
    (request,) = receiver.requests
    body = json.loads(request["body"])
    assert (body["type"], body["segment"], body["customer_id"], body["via"]) == (
        "segment.entered", "vips", "cus_1", "realtime")
    assert request["headers"]["X-Accord-Signature"] == sign(request["body"], SECRET.encode())
    assert verify(request["body"], SECRET.encode(), request["headers"]["X-Accord-Signature"])
    assert request["headers"]["X-Accord-Delivery"] == body["id"]
    assert world.store.fetchall("SELECT status, attempts, last_status FROM webhook_deliveries") == [("delivered", 1, 200)]


def test_a_failed_delivery_waits_with_exponential_backoff_then_succeeds(world: World, config_for,
                                                                        receiver: Receiver) -> None:
    cfg = config_for(hooks_yaml(receiver.url))
    _enter_vip(world, cfg)
    receiver.statuses = [500, 503]
    before = utcnow()
    assert drain(world.store, cfg).as_dict() == {"delivered": 0, "retrying": 1, "dead": 0}
    first_wait = world.store.scalar("SELECT next_attempt_at FROM webhook_deliveries") - before
    assert timedelta(seconds=10) <= first_wait < timedelta(seconds=12)
    sender = Sender(cfg)
    assert sender.deliver_due(world.store).as_dict() == {"delivered": 0, "retrying": 0, "dead": 0}  # not due yet
    second = sender.deliver_due(world.store, utcnow() + timedelta(seconds=11))
    assert second.retrying == 1
    second_wait = world.store.scalar("SELECT next_attempt_at FROM webhook_deliveries") - utcnow()
    assert timedelta(seconds=19) <= second_wait <= timedelta(seconds=20)  # doubled
    assert sender.deliver_due(world.store, utcnow() + timedelta(seconds=21)).delivered == 1
    sender.close()
    assert [r["headers"]["X-Accord-Delivery"] for r in receiver.requests].count(
        receiver.requests[0]["headers"]["X-Accord-Delivery"]) == 3  # the same id on every attempt
    assert world.store.fetchall("SELECT status, attempts FROM webhook_deliveries") == [("delivered", 3)]


def test_after_max_attempts_a_delivery_is_dead_lettered_and_replay_sends_it(world: World, config_for,
                                                                             receiver: Receiver) -> None:
    cfg = config_for(hooks_yaml(receiver.url))
    _enter_vip(world, cfg)
    receiver.statuses = [500, 500, 500]
    sender = Sender(cfg)
    for hours in (0, 1, 2):
        sender.deliver_due(world.store, utcnow() + timedelta(hours=hours))
    sender.close()
    (dead,) = dead_letters(world.store)
    assert (dead["segment"], dead["kind"], dead["attempts"], dead["last_status"]) == ("vips", "enter", 3, 500)
    assert dead["last_error"].startswith("HTTP 500")
    assert replay(world.store, [dead["delivery_id"][:8]]) == 1
    assert drain(world.store, cfg).delivered == 1
    assert dead_letters(world.store) == []


def test_replaying_an_unknown_id_is_refused(world: World) -> None:
    with pytest.raises(AccordError, match="no dead-lettered delivery has an id starting with nope"):
        replay(world.store, ["nope"])


def test_webhooks_receive_only_the_segments_and_changes_they_ask_for(world: World, config_for,
                                                                    receiver: Receiver) -> None:
    cfg = config_for(hooks_yaml(receiver.url, "      segments: [buyers]\n      events: [exit]\n"))
    world.customer("cus_1", traits={"vip": True, "orders": 2})
    on_event(world.store, cfg, "cus_1")
    world.store.execute("UPDATE customer_traits SET value_num = 0 WHERE customer_id = 'cus_1'")
    on_event(world.store, cfg, "cus_1")
    drain(world.store, cfg)
    assert [(json.loads(r["body"])["segment"], json.loads(r["body"])["type"]) for r in receiver.requests] == [
        ("buyers", "segment.exited")]


def test_a_claim_left_by_a_crashed_sender_is_sent_after_its_lease(world: World, config_for,
                                                                  receiver: Receiver) -> None:
    cfg = config_for(hooks_yaml(receiver.url))
    _enter_vip(world, cfg)
    sender = Sender(cfg)
    assert len(sender.claim(world.store, utcnow())) == 1  # claimed, then the process died
    assert sender.deliver_due(world.store).delivered == 0
    assert sender.deliver_due(world.store, utcnow() + timedelta(minutes=2)).delivered == 1
    sender.close()


def test_a_missing_secret_variable_is_named(config_for, receiver: Receiver) -> None:
    cfg = config_for(f"""  webhooks:
    - name: crm
      url: {receiver.url}
      secret_env: ACCORD_TEST_UNSET_SECRET
""")
    with pytest.raises(AccordError, match="secret_env: the environment variable ACCORD_TEST_UNSET_SECRET is not set"):
        Sender(cfg)


def test_the_delivery_thread_sends_as_soon_as_it_is_woken(world: World, config_for, receiver: Receiver) -> None:
    cfg = config_for(hooks_yaml(receiver.url))
    worker = DeliveryWorker(world.store.url, cfg, poll_seconds=60)  # polling alone would wait a minute
    worker.start()
    try:
        time.sleep(0.2)  # let it settle into its wait
        _enter_vip(world, cfg)
        worker.wake()
        assert receiver.received.wait(10)
    finally:
        worker.stop()
    assert json.loads(receiver.requests[0]["body"])["customer_id"] == "cus_1"


def test_a_batch_run_queues_one_delivery_per_change_and_all_are_sent(world: World, config_for,
                                                                    receiver: Receiver) -> None:
    from accord.segments.batch import evaluate_segments

    cfg = config_for(hooks_yaml(receiver.url, "      segments: [vips]\n"))
    for i in range(150):
        world.customer(f"cus_{i:03d}", traits={"vip": True})
    assert evaluate_segments(world.store, cfg, "run_1").webhooks_queued == 150
    assert drain(world.store, cfg).delivered == 150
    bodies = [json.loads(r["body"]) for r in receiver.requests]
    assert sorted(b["customer_id"] for b in bodies) == [f"cus_{i:03d}" for i in range(150)]
    assert {(b["via"], b["type"]) for b in bodies} == {("batch", "segment.entered")}


def _purpose_config(store_url: str, tmp_path: Any, url: str, purpose: str = "email_marketing",
                    privacy: str = "") -> Any:
    from accord.config import parse_config

    hook_purpose = f"      purpose: {purpose}\n"
    text = f"store: {store_url!r}\nsegments:\n{hooks_yaml(url, hook_purpose)}" + (f"privacy:\n{privacy}" if privacy else "")
    return parse_config(text, base_dir=tmp_path)


def test_a_webhook_with_a_purpose_gets_only_customers_who_consent_to_it(world: World, receiver: Receiver,
                                                                       tmp_path: Any) -> None:
    cfg = _purpose_config(world.store.url, tmp_path, receiver.url)
    world.customer("cus_granted", traits={"vip": True}, consent={"email_marketing": "granted"})
    world.customer("cus_denied", traits={"vip": True}, consent={"email_marketing": "denied"})
    world.customer("cus_withdrawn", traits={"vip": True}, consent={"email_marketing": "withdrawn"})
    world.customer("cus_silent", traits={"vip": True})  # no decision: the purpose's default, denied
    for customer_id in ("cus_granted", "cus_denied", "cus_withdrawn", "cus_silent"):
        on_event(world.store, cfg, customer_id)
    assert drain(world.store, cfg).delivered == 1
    (body,) = [json.loads(r["body"]) for r in receiver.requests]
    assert (body["customer_id"], body["segment"], body["purpose"]) == ("cus_granted", "vips", "email_marketing")


def test_a_batch_run_withholds_the_changes_of_customers_without_the_webhooks_purpose(
        world: World, receiver: Receiver, tmp_path: Any) -> None:
    from accord.segments.batch import evaluate_segments

    cfg = _purpose_config(world.store.url, tmp_path, receiver.url, "analytics",
                          "  purposes:\n    analytics: {default: granted}\n    email_marketing: {}\n")
    for i in range(120):  # over enqueue's bulk-load threshold
        world.customer(f"cus_{i:03d}", traits={"vip": True},
                       consent={"analytics": "denied"} if i % 3 == 0 else {})
    report = evaluate_segments(world.store, cfg, "run_1")
    assert report.segments["vips"]["entered"] == 120  # membership itself does not need the purpose
    assert report.webhooks_queued == 80
    assert drain(world.store, cfg).delivered == 80
    assert sorted(json.loads(r["body"])["customer_id"] for r in receiver.requests) == [
        f"cus_{i:03d}" for i in range(120) if i % 3]


def test_a_webhook_purpose_that_privacy_does_not_list_is_named(world: World, receiver: Receiver,
                                                              tmp_path: Any) -> None:
    cfg = _purpose_config(world.store.url, tmp_path, receiver.url, "telepathy")
    with pytest.raises(AccordError, match=r"segments.webhooks\[crm\].purpose: 'telepathy' is not a consent purpose"):
        Sender(cfg)
