"""API keys: roles, hashing, where keys come from, and the JSON errors without one."""

from __future__ import annotations

from typing import Any

import pytest

from accord.api.auth import configured_keys, hash_key
from accord.errors import ConfigError
from tests.api.conftest import ADMIN_KEY, READ_KEY, WRITE_KEY, Api, basic

TRACK = {"userId": "u1", "event": "E"}


def test_collection_without_a_key_is_401(api: Api) -> None:
    r = api.post("/v1/track", TRACK, key=None)
    assert (r.status_code, r.json()) == (401, {
        "code": "unauthorized",
        "message": "missing API key: send Authorization: Bearer API_KEY or HTTP Basic with the write key as user name"})


def test_unknown_key_is_401(api: Api) -> None:
    r = api.post("/v1/track", TRACK, key="not-a-key")
    assert (r.status_code, r.json()) == (401, {"code": "unauthorized", "message": "unknown API key"})


def test_read_key_cannot_collect(api: Api) -> None:
    r = api.post("/v1/track", TRACK, key=READ_KEY)
    assert (r.status_code, r.json()) == (403, {
        "code": "forbidden",
        "message": "key 'env:ACCORD_READ_KEY' has role 'read'; this endpoint needs one of: admin, ingest, write"})


def test_write_key_collects_with_bearer(api: Api) -> None:
    assert api.post("/v1/track", TRACK, key=WRITE_KEY).status_code == 200


def test_admin_key_collects(api: Api) -> None:
    assert api.post("/v1/track", TRACK, key=ADMIN_KEY).status_code == 200


def test_write_key_as_basic_user_name_collects_like_segment(api: Api) -> None:
    assert api.post("/v1/track", TRACK, key=None, headers=basic(WRITE_KEY)).status_code == 200


def test_basic_with_unknown_user_name_is_401(api: Api) -> None:
    assert api.post("/v1/track", TRACK, key=None, headers=basic("nope")).status_code == 401


def test_keys_are_stored_only_as_sha256_hashes(api: Api) -> None:
    rows = api.rows("SELECT key_hash, name, role, origin FROM api_keys ORDER BY role")
    assert rows == [(hash_key(ADMIN_KEY), "env:ACCORD_ADMIN_KEY", "admin", "env"),
                    (hash_key(READ_KEY), "env:ACCORD_READ_KEY", "read", "env"),
                    (hash_key(WRITE_KEY), "env:ACCORD_WRITE_KEY", "write", "env")]


def test_config_key_hash_authenticates(make_api: Any) -> None:
    api = make_api({"keys": [{"name": "shop", "role": "write", "key_hash": hash_key("shop-key")}]}, environ={})
    assert api.post("/v1/track", TRACK, key="shop-key").status_code == 200


def test_key_removed_from_config_stops_working_at_the_next_start(make_api: Any) -> None:
    make_api({"keys": [{"name": "old", "role": "write", "key_hash": hash_key("old-key")}]}, environ={})
    api = make_api({"keys": []}, environ={})
    assert api.post("/v1/track", TRACK, key="old-key").status_code == 401


def test_bad_key_hash_in_config_names_the_entry() -> None:
    with pytest.raises(ConfigError, match=r"^accord.yaml: api.keys\[0\].key_hash: expected 'sha256:' followed by"):
        configured_keys({"keys": [{"name": "shop", "role": "write", "key_hash": "plaintext"}]}, environ={})


def test_unknown_role_in_config_names_the_entry() -> None:
    with pytest.raises(ConfigError, match=r"^accord.yaml: api.keys\[0\].role: Input should be 'admin', 'steward', "):
        configured_keys({"keys": [{"name": "x", "role": "owner", "key_hash": hash_key("k")}]}, environ={})
