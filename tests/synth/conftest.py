from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pytest

from accord.synth import generate
from accord.synth.people import People, build_people

PEOPLE = 4000
SEED = 7


class Sample:
    """One generated sample, read back from disk, with the true people beside it."""

    def __init__(self, out: Path, people: People):
        self.out = out
        self.people = people
        self.truth = read_csv(out / "truth.csv")

    def table(self, name: str) -> pa.Table:
        path = self.out / name
        if name.endswith(".csv"):
            return read_csv(path)
        return pajson.read_json(path)

    def person_index(self, source: str, keys: list[str]) -> list[int]:
        """The true person (index into People) of each record key, from truth.csv."""
        t = self.truth.to_pydict()
        lookup = {k: int(p[1:]) - 1 for s, k, p in zip(t["source"], t["record_key"], t["person_id"]) if s == source}
        return [lookup[k] for k in keys]


def read_csv(path: Path) -> pa.Table:
    # Everything as text: the tests compare what was written.
    names = path.open(encoding="utf-8").readline().strip().replace('"', "").split(",")
    opts = pacsv.ConvertOptions(column_types={n: pa.string() for n in names}, strings_can_be_null=True)
    return pacsv.read_csv(path, convert_options=opts)


@pytest.fixture(scope="session")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    out = tmp_path_factory.mktemp("synth") / "demo"
    generate(out, people=PEOPLE, seed=SEED)
    return Sample(out, build_people(PEOPLE, SEED))
