import csv

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from accord.config import ProjectConfig, SourceConfig
from accord.errors import AccordError
from accord.profiles import build_profiles, export_identities, export_profiles
from accord.profiles.cli import COMMANDS
from tests.profiles.helpers import add_records, clustering

CFG = ProjectConfig(sources=[SourceConfig(name="crm", format="csv", path="c.csv", primary_key="id",
                                          fields={"given_name": "g"}, priority=1)])


@pytest.fixture
def built(store):
    add_records(store, [
        {"rid": "crm:1", "given_name": "Ann", "family_name": "Lee", "emails": ["ann@x.com"], "city": "York"},
        {"rid": "shop:1", "given_name": "Annie", "emails": ["Ann@X.com", "a.lee@work.com"], "day": 1},
        {"rid": "shop:2", "given_name": "Bob", "phones": ["+1 555 0100"], "day": 2}])
    build_profiles(store, CFG, clustering(["crm:1", "shop:1"], ["shop:2"]), "run_1")
    return store


def test_export_identities_writes_source_record_key_customer_id(built, tmp_path):
    path = tmp_path / "ids.csv"
    assert export_identities(built, path) == 3
    with path.open() as f:
        rows = list(csv.reader(f))
    assert rows == [["source", "record_key", "customer_id"], ["crm", "1", "cus_00000001"],
                    ["shop", "1", "cus_00000001"], ["shop", "2", "cus_00000002"]]


def test_export_profiles_csv_has_one_row_per_customer_with_golden_columns(built, tmp_path):
    path = tmp_path / "profiles.csv"
    assert export_profiles(built, path) == 2
    with path.open() as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["customer_id", "given_name", "family_name", "full_name", "email", "phone",
                             "date_of_birth", "company", "street", "city", "region", "postcode", "country",
                             "emails", "phones", "addresses", "records"]
    ann, bob = rows
    assert (ann["customer_id"], ann["given_name"], ann["email"], ann["city"], ann["records"]) == \
        ("cus_00000001", "Ann", "ann@x.com", "York", "2")
    assert sorted(eval(ann["emails"])) == ["a.lee@work.com", "ann@x.com"]
    assert (bob["given_name"], bob["phone"], bob["phones"]) == ("Bob", "+15550100", '["+15550100"]')


def test_export_profiles_parquet(built, tmp_path):
    path = tmp_path / "profiles.parquet"
    export_profiles(built, path)
    table = pq.read_table(path)
    assert table.num_rows == 2 and table.column_names[0] == "customer_id"


def test_export_refuses_an_unknown_extension(built, tmp_path):
    with pytest.raises(AccordError, match="expected a .csv or .parquet"):
        export_identities(built, tmp_path / "ids.xlsx")


@pytest.fixture
def cli(built, store_url, tmp_path):
    (tmp_path / "accord.yaml").write_text(f"store: {store_url}\n", encoding="utf-8")
    import click

    group = click.Group("accord", commands={c.name: c for c in COMMANDS})
    runner = CliRunner()
    return lambda *args: runner.invoke(group, list(args), obj={"config": str(tmp_path / "accord.yaml")},
                                       catch_exceptions=False)


def test_cli_history_prints_the_events_of_a_merged_id(cli, built):
    build_profiles(built, CFG, clustering(["crm:1", "shop:1", "shop:2"]), "run_2")
    result = cli("history", "cus_00000002", "--json")
    assert result.exit_code == 0, result.output
    assert '"customer_id": "cus_00000001"' in result.output and '"redirected": true' in result.output
    table = cli("history", "cus_00000001")
    assert "merged" in table.output and "created" in table.output


def test_cli_unmerge_export_and_decide(cli, built, tmp_path):
    result = cli("unmerge", "cus_00000001", "shop:1", "--reason", "not her", "--actor", "user:ana")
    assert result.exit_code == 0 and "cus_00000003" in result.output
    assert cli("export", "identities", "--out", str(tmp_path / "i.csv")).exit_code == 0
    assert (tmp_path / "i.csv").read_text().splitlines()[0] == "source,record_key,customer_id"
    assert "recorded cannot_link" in cli("decide", "shop:1", "shop:2", "--different").output
    assert cli("profile", "cus_00000003", "--json").exit_code == 0
