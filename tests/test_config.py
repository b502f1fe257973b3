"""accord.yaml: typed loading, and errors that name the file, line and key with what was expected."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from accord.config import CANONICAL_FIELDS, FieldSpec, load_config, parse_config
from accord.errors import AccordError, ConfigError
from accord.project import write_starter_project
from accord.sources import ingest


def config_error(text: str) -> str:
    with pytest.raises(ConfigError) as exc:
        parse_config(textwrap.dedent(text).lstrip("\n"))
    return str(exc.value)


def test_a_wrong_format_names_file_line_key_and_the_choices(tmp_path, monkeypatch):
    (tmp_path / "accord.yaml").write_text(textwrap.dedent("""\
        store: duckdb:///accord.duckdb
        sources:
          - name: crm
            format: csv
            path: crm.csv
            primary_key: id
            fields: {given_name: first}
          - name: shop
            format: jsonl
            path: shop.jsonl
            primary_key: id
            fields: {emails: [email]}
          - name: legacy
            format: xls
            path: legacy.xls
            primary_key: id
            fields: {given_name: first}
        """))
    monkeypatch.chdir(tmp_path)

    with pytest.raises(ConfigError) as exc:
        load_config()

    assert str(exc.value) == "accord.yaml:14: sources[2].format: expected one of csv, jsonl, parquet, sql; got 'xls'"


def test_an_unknown_canonical_field_lists_the_canonical_fields():
    message = config_error("""
        sources:
          - name: crm
            format: csv
            path: crm.csv
            primary_key: id
            fields:
              given_name: first
              nickname: nick
        """)

    assert message == (f"accord.yaml:8: sources[0].fields.nickname: unknown canonical field; expected one of "
                       f"{', '.join(CANONICAL_FIELDS)}")


def test_a_missing_required_key_is_reported_at_its_section():
    message = config_error("""
        sources:
          - name: crm
            format: csv
            path: crm.csv
            fields: {given_name: first}
        """)

    assert message == "accord.yaml:2: sources[0].primary_key: required key is missing"


def test_bad_yaml_syntax_names_the_line():
    message = config_error("""
        sources:
          - name: crm
            format: csv
           path: crm.csv
        """)

    assert message == "accord.yaml:4: not valid YAML: expected <block end>, but found '<block mapping start>'"


def test_a_key_given_twice_is_refused_rather_than_silently_dropped():
    message = config_error("""
        sources:
          - {name: crm, format: csv, path: a.csv, primary_key: id, fields: {given_name: first}}
        store: duckdb:///a.duckdb
        sources:
          - {name: shop, format: csv, path: b.csv, primary_key: id, fields: {given_name: first}}
        """)

    assert message == "accord.yaml:4: sources: this key is given twice (first on line 1); keep one"


def test_an_unknown_section_is_named_with_its_line():
    message = config_error("""
        store: duckdb:///accord.duckdb
        sorces: []
        """)

    assert message == ("accord.yaml:2: sorces: unknown key (check the spelling; see the accord.yaml reference "
                       "in README)")


def test_an_unknown_transform_names_its_position_and_the_choices():
    message = config_error("""
        sources:
          - name: crm
            format: csv
            path: crm.csv
            primary_key: id
            fields:
              family_name: {column: last, transforms: [trim, strip]}
        """)

    assert message == ("accord.yaml:7: sources[0].fields.family_name.transforms[1]: expected one of trim, lower, "
                       "upper, title, digits, null_if_empty; got 'strip'")


def test_every_error_in_the_file_is_reported_at_once_with_plain_type_names():
    message = config_error("""
        store: [1]
        sources:
          - name: crm
            format: csv
            path: crm.csv
            primary_key: id
            fields: {given_name: first}
            csv: {delimiter: ";;", header: maybe}
            priority: high
        """)

    assert message.splitlines() == [
        "accord.yaml:1: store: expected a string; got [1]",
        "accord.yaml:8: sources[0].csv.delimiter: expected a single character; got ';;'",
        "accord.yaml:8: sources[0].csv.header: expected true or false; got 'maybe'",
        "accord.yaml:9: sources[0].priority: expected an integer; got 'high'",
    ]


def test_a_field_needs_exactly_one_of_column_or_constant():
    message = config_error("""
        sources:
          - name: crm
            format: csv
            path: crm.csv
            primary_key: id
            fields:
              country: {column: land, constant: US}
        """)

    assert message == "accord.yaml:7: sources[0].fields.country: give exactly one of 'column' or 'constant'"


def test_each_format_asks_for_where_its_rows_come_from():
    message = config_error("""
        sources:
          - name: crm
            format: csv
            primary_key: id
            fields: {given_name: first}
          - name: billing
            format: sql
            primary_key: id
            fields: {given_name: first}
        """)

    assert message.splitlines() == [
        "accord.yaml:2: sources[0]: format 'csv' needs a 'path'",
        "accord.yaml:6: sources[1]: format 'sql' needs a 'sql' section with 'url' and 'query'",
    ]


def test_a_source_name_must_be_a_lower_case_identifier():
    message = config_error("""
        sources:
          - name: Web-Shop
            format: csv
            path: shop.csv
            primary_key: id
            fields: {given_name: first}
        """)

    assert message == ("accord.yaml:2: sources[0].name: expected lower-case letters, digits and '_', starting "
                       "with a letter; got 'Web-Shop'")


def test_two_sources_with_one_name_are_refused():
    message = config_error("""
        sources:
          - {name: crm, format: csv, path: a.csv, primary_key: id, fields: {given_name: first}}
          - {name: crm, format: csv, path: b.csv, primary_key: id, fields: {given_name: first}}
        """)

    assert message == "accord.yaml:2: sources: source name 'crm' is used twice (sources[0] and sources[1])"


def test_a_top_level_that_is_not_a_mapping_is_refused():
    assert config_error("- a\n- b\n") == "accord.yaml:1: expected a mapping of sections (store, sources, ...) at the top"


def test_a_missing_config_file_says_how_to_start(tmp_path):
    with pytest.raises(ConfigError) as exc:
        load_config(tmp_path)

    assert str(exc.value) == (f"{tmp_path / 'accord.yaml'}: no such file. Run 'accord init DIR' to start a project, "
                              "or pass --config PATH.")


def test_field_shorthands_become_field_specs():
    cfg = parse_config(textwrap.dedent("""
        sources:
          - name: crm
            format: csv
            path: crm.csv
            primary_key: [region, id]
            fields:
              given_name: first
              emails: email
              phones: [phone, {column: mobile, transforms: [digits]}]
              external_ids: {crm_id: id}
        """))

    fields = cfg.source("crm").fields
    assert cfg.source("crm").primary_key == ["region", "id"]
    assert fields.given_name == FieldSpec(column="first")
    assert fields.emails == [FieldSpec(column="email")]
    assert fields.phones == [FieldSpec(column="phone"), FieldSpec(column="mobile", transforms=["digits"])]
    assert fields.external_ids == {"crm_id": FieldSpec(column="id")}
    assert cfg.source("crm").referenced_columns() == {"region", "id", "first", "email", "phone", "mobile"}


def test_an_unknown_source_name_lists_the_known_ones():
    cfg = parse_config("sources:\n  - {name: crm, format: csv, path: a.csv, primary_key: id, fields: {city: c}}\n")

    with pytest.raises(ConfigError, match=r"^no source named 'shop' in accord.yaml; known: crm$"):
        cfg.source("shop")


def test_a_relative_duckdb_store_lives_beside_accord_yaml(tmp_path):
    (tmp_path / "accord.yaml").write_text("store: duckdb:///data/accord.duckdb\n")

    cfg = load_config(tmp_path)

    assert cfg.store_url() == f"duckdb:///{tmp_path.resolve() / 'data' / 'accord.duckdb'}"


# --- accord init --------------------------------------------------------------------------------


def test_the_starter_project_loads_and_ingests_as_written(tmp_path, store):
    write_starter_project(tmp_path / "demo")
    cfg = load_config(tmp_path / "demo")

    (report,) = ingest(store, cfg)

    assert (report.error, report.source, report.read, report.new, report.quarantined) == (None, "crm", 3, 3, 0)


def test_init_refuses_to_overwrite_an_existing_project(tmp_path):
    (tmp_path / "accord.yaml").write_text("project: mine\n")

    with pytest.raises(AccordError) as exc:
        write_starter_project(tmp_path)

    assert str(exc.value) == f"{tmp_path / 'accord.yaml'} already exists; pass --force to overwrite it"
    assert (tmp_path / "accord.yaml").read_text() == "project: mine\n"


def test_init_with_force_overwrites_an_existing_project(tmp_path):
    (tmp_path / "accord.yaml").write_text("project: mine\n")

    written = write_starter_project(tmp_path, force=True)

    assert written == [tmp_path / "accord.yaml", tmp_path / "data" / "customers.csv"]
    assert load_config(tmp_path).project == "my-project"


def test_the_starter_store_is_a_duckdb_file_in_the_project(tmp_path: Path):
    write_starter_project(tmp_path)

    assert load_config(tmp_path).store_url() == f"duckdb:///{tmp_path.resolve() / 'accord.duckdb'}"
