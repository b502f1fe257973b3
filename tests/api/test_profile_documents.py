"""Profile documents: the profile API's stored copy of each profile, and what keeps it true.

A lookup that finds no document computes the profile and stores it; the next lookup answers from
the document with the same JSON. Whatever changes a customer's golden record, records or status
removes its document in the same transaction, so a lookup never answers an outdated profile.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from accord.config import ProjectConfig
from accord.profiles import build_profiles
from accord.profiles.golden import build_golden
from accord.profiles.lookup import (
    PROFILE_DOCUMENTS_DDL,
    build_profile_documents,
    document_generation,
    invalidate_profile_documents,
    store_profile_document,
)
from accord.store import open_store
from tests.api.conftest import Api
from tests.api.test_profiles import ADA, BOB, get
from tests.profiles.helpers import add_records, clustering


def documents(api: Api) -> dict[str, dict[str, Any]]:
    return {c: orjson.loads(d) for c, d in api.rows("SELECT customer_id, document FROM profile_documents")}


@pytest.fixture
def people(store_url: str, make_api: Any) -> Api:
    """Ada (crm:c1 and shop:s1, cus_00000001) and Bob (crm:c2, cus_00000002); then the app on that store."""
    cfg = ProjectConfig.model_validate({"store": store_url})
    with open_store(store_url) as store:
        add_records(store, ADA + BOB)
        build_profiles(store, cfg, clustering(["crm:c1", "shop:s1"], ["crm:c2"]), "run_1")
    return make_api()


def test_a_lookup_stores_the_profile_it_computed_and_the_next_answers_from_it_unchanged(people: Api) -> None:
    assert documents(people) == {}
    first = get(people, "/v1/profiles/email:ada@example.com")
    assert first.status_code == 200
    assert set(documents(people)) == {"cus_00000001"}
    second = get(people, "/v1/profiles/email:ada@example.com")
    assert second.json() == first.json()
    assert second.json()["attributes"]["given_name"]["value"] == "Ada"


def test_the_document_path_answers_what_the_computed_path_answers_for_every_kind_of_reference(people: Api) -> None:
    refs = ["customer_id:cus_00000001", "email:ada@example.com", "crm_contact_id:C-1", "phone:+12127365000"]
    computed = [get(people, f"/v1/profiles/{r}").json() for r in refs]  # the first one stores the document
    from_documents = [get(people, f"/v1/profiles/{r}").json() for r in refs]
    assert from_documents == computed
    assert {b["requested_id"] for b in from_documents} == {"cus_00000001"}


def test_a_golden_rebuild_of_a_customer_removes_its_document_and_the_lookup_sees_the_change(people: Api) -> None:
    assert get(people, "/v1/profiles/email:bob@example.com").json()["attributes"]["given_name"]["value"] == "Bob"
    get(people, "/v1/profiles/email:ada@example.com")
    assert set(documents(people)) == {"cus_00000001", "cus_00000002"}

    def rename_bob(store: Any) -> None:
        store.execute("UPDATE source_records SET given_name = 'Robert' WHERE record_key = 'c2'")
        build_golden(store, customer_ids=["cus_00000002"])

    people.run(rename_bob)
    assert set(documents(people)) == {"cus_00000001"}
    assert get(people, "/v1/profiles/email:bob@example.com").json()["attributes"]["given_name"]["value"] == "Robert"


def test_a_full_golden_rebuild_drops_every_document(people: Api, store_url: str) -> None:
    get(people, "/v1/profiles/email:ada@example.com")
    get(people, "/v1/profiles/email:bob@example.com")
    assert len(documents(people)) == 2
    cfg = ProjectConfig.model_validate({"store": store_url})
    people.run(lambda store: build_profiles(store, cfg, clustering(["crm:c1", "shop:s1"], ["crm:c2"]), "run_2"))
    assert documents(people) == {}


def test_an_alias_merging_two_customers_removes_both_documents(people: Api) -> None:
    people.run(lambda store: store.execute(
        "INSERT INTO customer_identifiers (id_type, value, customer_id, origin) VALUES "
        "('user_id', 'u-ada', 'cus_00000001', 'realtime'), ('user_id', 'u-bob', 'cus_00000002', 'realtime')"))
    get(people, "/v1/profiles/customer_id:cus_00000001")
    get(people, "/v1/profiles/customer_id:cus_00000002")
    assert set(documents(people)) == {"cus_00000001", "cus_00000002"}
    assert people.post("/v1/alias", {"userId": "u-ada", "previousId": "u-bob"}).status_code == 200
    assert documents(people) == {}
    body = get(people, "/v1/profiles/customer_id:cus_00000002").json()
    assert (body["customer_id"], body["merged_ids"]) == ("cus_00000001", ["cus_00000002"])


def test_a_document_built_before_an_invalidation_is_not_stored(people: Api) -> None:
    def race(store: Any) -> tuple[bool, bool]:
        generation = document_generation(store)
        invalidate_profile_documents(store, ["cus_00000001"])  # a change lands while the lookup computes
        late = store_profile_document(store, "cus_00000001", b'{"status": "active"}', generation)
        fresh = store_profile_document(store, "cus_00000001", b'{"status": "active"}', document_generation(store))
        return late, fresh

    assert people.run(race) == (False, True)


def test_a_second_document_for_the_same_customer_is_not_stored(people: Api) -> None:
    def twice(store: Any) -> tuple[bool, bool]:
        generation = document_generation(store)
        return (store_profile_document(store, "cus_00000002", b'{"n": 1}', generation),
                store_profile_document(store, "cus_00000002", b'{"n": 2}', generation))

    assert people.run(twice) == (True, False)
    assert documents(people)["cus_00000002"] == {"n": 1}


def test_dropping_every_document_recreates_the_table_the_migration_creates() -> None:
    migration = Path(__file__).parents[2] / "src/accord/store/migrations/0015_profile_documents.sql"
    text = " ".join(line for line in migration.read_text().splitlines() if not line.startswith("--"))
    created = " ".join(text[text.index("CREATE TABLE"):text.index(";")].split())
    assert created.replace("( ", "(").replace(" )", ")") == PROFILE_DOCUMENTS_DDL


def test_documents_built_in_bulk_equal_those_lookups_store(people: Api) -> None:
    answers = [get(people, f"/v1/profiles/customer_id:{c}").json() for c in ("cus_00000001", "cus_00000002")]
    by_lookup = documents(people)
    people.run(lambda store: invalidate_profile_documents(store))
    assert people.run(lambda store: build_profile_documents(store, chunk=1)) == 2
    assert documents(people) == by_lookup
    assert [get(people, f"/v1/profiles/customer_id:{c}").json() for c in ("cus_00000001", "cus_00000002")] == answers


def test_a_read_answered_from_a_document_is_in_the_access_audit_as_any_profile_read(people: Api) -> None:
    get(people, "/v1/profiles/email:ada@example.com")  # computes and stores the document
    r = people.client.get("/v1/profiles/email:ada@example.com",
                          headers={"Authorization": "Bearer test-read-key", "X-Accord-Purpose": "support ticket 9"})
    assert r.status_code == 200
    rows = people.rows("SELECT actor, role, channel, action, customer_id, purpose, detail FROM access_log "
                       "ORDER BY accessed_at, access_id")
    assert rows[-1] == ("key:env:ACCORD_READ_KEY", "read", "api", "profile.read", "cus_00000001", "support ticket 9",
                        "get_profile")
    assert len(rows) == 2
