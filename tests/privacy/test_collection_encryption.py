"""PII at rest for what the collection API stores (issue #8 item 8): with ``privacy.encryption``, the person
traits of identify, track and group messages are tokens in ``events`` and ``identity_signals``, stitching
matches on keyed hashes, reads decrypt, erasure leaves nothing and rotation reaches the collected rows."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from accord.config import ProjectConfig
from accord.privacy.encryption import rotate_keys
from accord.privacy.erasure import erase
from accord.privacy.pii import BLIND_PREFIX, KEYS_ENV, TOKEN_PREFIX, PiiCodec, PiiKeyError
from accord.privacy.purge import purge
from accord.profiles import build_profiles
from accord.sources import ingest
from accord.store import Store, open_store
from tests.privacy.conftest import ROLE_KEYS, Client, customer_of, project_config, write_sources
from tests.privacy.test_encryption import KEY_1, KEY_2, keys_env
from tests.privacy.test_erasure import file_hits, table_text_hits
from tests.profiles.helpers import clustering

FIELDS = ["emails", "phones", "date_of_birth", "street", "city", "postcode", "given_name", "family_name",
          "full_name", "company"]
IDENTIFY = {"userId": "user-ann-9", "anonymousId": "anon-ann-9", "messageId": "m-identify",
            "traits": {"email": "ANN.Quill@example.com", "firstName": "Annabel", "lastName": "Quill",
                       "phone": "(415) 555-0142", "birthday": "1990-04-01", "plan": "gold",
                       "address": {"street": "12 Quill Lane", "city": "Springfield", "postalCode": "99501",
                                   "country": "US"},
                       "company": {"name": "Quillworks", "plan": "team"}}}
TRACK = {"userId": "user-ann-9", "messageId": "m-track", "event": "Order Completed",
         "properties": {"revenue": 42.5, "sku": "SKU-1", "name": "Blue Mug", "email": "ann.quill@example.com"},
         "context": {"traits": {"email": "ann.quill@example.com", "name": "Annabel Quill"}}}
GROUP = {"userId": "user-ann-9", "groupId": "acme-9", "messageId": "m-group",
         "traits": {"name": "Acme Ltd", "email": "ann.quill@example.com", "employees": 40}}
SECRETS = ("ann.quill@example.com", "Annabel", "12 Quill Lane", "Springfield", "99501", "1990-04-01",
           "555-0142", "+14155550142", "Quillworks")
"""Values of configured fields the messages carry: none may be stored as sent."""


@dataclass
class Project:
    cfg: ProjectConfig
    store_url: str
    ann: str


@pytest.fixture
def project(store: Store, store_url: str, tmp_path_factory: pytest.TempPathFactory,
            monkeypatch: pytest.MonkeyPatch) -> Project:
    """Ann (crm:1001, shop:S-77) and Bob in a store whose person fields are encrypted."""
    keys_env(monkeypatch)
    data = tmp_path_factory.mktemp("sources")  # apart from the store's folder, which is scanned
    write_sources(data)
    cfg = project_config(store_url, data, {"encryption": {"fields": FIELDS}})
    assert [r.error for r in ingest(store, cfg, run_id="run_1")] == [None, None, None]
    build_profiles(store, cfg, clustering(["crm:1001", "shop:S-77"], ["crm:1002", "shop:S-88"]), "run_1")
    ann = customer_of(store, "crm", "1001")
    store.close()  # the app's store thread is the one connection
    return Project(cfg, store_url, ann)


@contextmanager
def serve(project: Project) -> Iterator[Client]:
    from fastapi.testclient import TestClient

    from accord.api import create_app

    env = {f"ACCORD_{r.upper()}_KEY": k for r, k in ROLE_KEYS.items()}
    with TestClient(create_app(project.cfg, environ=env)) as client:
        yield Client(client)


def in_store(api: Client, fn: Any) -> Any:
    worker = api.client.app.state.store_worker
    return api.client.portal.call(worker.call, fn)


@pytest.fixture
def collected(project: Project) -> Iterator[Client]:
    """The API after Ann's identify, track and group messages."""
    with serve(project) as api:
        for kind, message in (("identify", IDENTIFY), ("track", TRACK), ("group", GROUP)):
            assert api.call("POST", f"/v1/{kind}", role="write", json=message).status_code == 200
        yield api


def test_person_traits_collected_through_the_api_are_stored_only_as_tokens(collected: Client) -> None:
    assert in_store(collected, lambda s: table_text_hits(s, SECRETS)) == {}
    [(traits,)] = collected.rows("SELECT CAST(traits AS TEXT) FROM identity_signals WHERE event_id = 'm-identify'")
    assert traits.count(TOKEN_PREFIX) == 9  # email, names, phone, birthday, street, city, postal code, company


def test_properties_that_are_not_person_fields_stay_plain(collected: Client) -> None:
    [(revenue, props)] = collected.rows(
        "SELECT revenue, CAST(properties AS TEXT) FROM events WHERE event_id = 'm-track'")
    assert revenue == 42.5
    properties = json.loads(props)["properties"]
    assert {k: properties[k] for k in ("revenue", "sku", "name")} == {"revenue": 42.5, "sku": "SKU-1",
                                                                       "name": "Blue Mug"}
    [(traits,)] = collected.rows("SELECT CAST(traits AS TEXT) FROM identity_signals WHERE event_id = 'm-identify'")
    assert json.loads(traits)["plan"] == "gold"
    assert collected.rows("SELECT name FROM accounts WHERE account_id = 'acme-9'") == [("Acme Ltd",)]


def test_identify_with_an_email_stitches_to_the_customer_whose_record_has_it(
        collected: Client, project: Project) -> None:
    assert collected.rows("SELECT customer_id FROM customer_identifiers WHERE id_type = 'user_id' "
                          "AND value = 'user-ann-9'") == [(project.ann,)]
    keyed = collected.rows("SELECT value FROM customer_identifiers WHERE customer_id = ? "
                           "AND id_type IN ('email', 'phone')", (project.ann,))
    assert keyed and all(v.startswith(BLIND_PREFIX) for (v,) in keyed)
    assert collected.rows("SELECT customer_id FROM account_members WHERE account_id = 'acme-9'") == [(project.ann,)]


def test_the_profile_events_export_and_dashboard_timeline_read_decrypted(
        collected: Client, project: Project) -> None:
    from accord.ui.data.customer import timeline

    events = collected.call("GET", "/v1/profiles/user_id:user-ann-9/events")
    export = collected.call("GET", "/v1/privacy/user_id:user-ann-9/export?format=json", role="steward")
    shown = in_store(collected, lambda s: timeline(s, project.ann, None, None))
    assert events.status_code == 200 and export.status_code == 200
    for text in (events.text, export.text, str(shown)):
        assert TOKEN_PREFIX not in text
        assert "12 Quill Lane" in text and "ann.quill@example.com" in text


def test_erasure_removes_the_collected_messages_and_the_store_files_hold_none_of_them(
        project: Project) -> None:
    codec = PiiCodec.from_env()
    digests = (codec.digest("email", "ann.quill@example.com"), codec.digest("phone", "+14155550142"))
    needles = (*SECRETS, *digests, "user-ann-9", "anon-ann-9")
    with serve(project) as api:
        for kind, message in (("identify", IDENTIFY), ("track", TRACK), ("group", GROUP)):
            assert api.call("POST", f"/v1/{kind}", role="write", json=message).status_code == 200
    with open_store(project.store_url) as store:
        receipt = erase(store, "email:ann.quill@example.com", actor="user:test")
        assert receipt.counts["events"] == 3 + 1  # the three messages and Ann's order
        assert receipt.counts["identity_signals"] == 2 and receipt.counts["accounts"] == 1
        assert table_text_hits(store, needles) == {}
    purge(project.store_url)
    if project.store_url.startswith("duckdb:"):
        assert file_hits(Path(project.store_url[len("duckdb:///"):]).parent, needles) == {}
    with serve(project) as api:  # suppression: the same person identified again is not stored
        again = {**IDENTIFY, "messageId": "m-identify-2", "userId": "user-ann-10", "anonymousId": "anon-ann-10"}
        assert api.call("POST", "/v1/identify", role="write", json=again).status_code == 200
        assert api.rows("SELECT count(*) FROM events WHERE event_id = 'm-identify-2'") == [(0,)]


def test_rotation_re_encrypts_the_collected_messages(collected: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    keys_env(monkeypatch, f"{KEY_2},{KEY_1}")
    report = in_store(collected, lambda s: rotate_keys(s, PiiCodec.from_env()))
    assert report.tables["events"] >= 3 and report.tables["identity_signals"] == 2
    assert report.tables["accounts"] == 1  # the group's email
    keys_env(monkeypatch, KEY_2)
    assert "12 Quill Lane" in collected.call("GET", "/v1/profiles/user_id:user-ann-9/events").text
    keys_env(monkeypatch, KEY_1)
    with pytest.raises(PiiKeyError, match=KEYS_ENV):
        in_store(collected, lambda s: rotate_keys(s, PiiCodec.from_env()) and None)


def test_the_api_does_not_start_without_the_keys(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    from accord.api import create_app

    monkeypatch.delenv(KEYS_ENV)
    with pytest.raises(PiiKeyError, match=KEYS_ENV):
        create_app(project.cfg, environ={})


def test_person_keys_are_found_in_any_case_and_each_value_of_a_list_is_encrypted(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from accord.privacy.encryption import Encryption, MessageEncryptor
    from accord.privacy.settings import EncryptionSettings

    keys_env(monkeypatch)
    encryptor = MessageEncryptor(Encryption(EncryptionSettings(fields=FIELDS), PiiCodec.from_env()))
    message = {"traits": {"EMAIL": ["a@x.com", "b@y.com"], "first_name": "Annabel", "age": 41},
               "properties": {"Phone": 4155550142, "name": "Blue Mug", "company": "Quillworks"}}
    stored = encryptor.message(message, "identify")
    assert [t[:5] for t in stored["traits"]["EMAIL"]] == [TOKEN_PREFIX] * 2
    assert stored["traits"]["first_name"].startswith(TOKEN_PREFIX) and stored["traits"]["age"] == 41
    assert stored["properties"]["Phone"].startswith(TOKEN_PREFIX)
    assert {k: stored["properties"][k] for k in ("name", "company")} == {"name": "Blue Mug", "company": "Quillworks"}
    assert encryptor.message({"properties": {"sku": "S-1"}}, "track") == {"properties": {"sku": "S-1"}}
