"""smgluon.movielens reads the real ml-100k files and names the file and line of every fault."""

import os
import shutil

import numpy as np
import pytest
from conftest import SHARED_DATA

from smgluon.channels import ChannelError
from smgluon.movielens import GENRES, read_items, read_ratings, read_titles, read_users

ML_100K = os.path.join(SHARED_DATA, "ml-100k")


def test_ratings_keep_the_timestamp():
    ratings = read_ratings(os.path.join(ML_100K, "u.data"))
    assert ratings.shape == (100000, 4) and ratings.dtype == np.int64
    assert ratings[0].tolist() == [196, 242, 3, 881250949]
    assert set(np.unique(ratings[:, 2]).tolist()) == {1, 2, 3, 4, 5}


def test_genre_names_are_those_of_u_genre():
    with open(os.path.join(ML_100K, "u.genre")) as f:
        assert tuple(line.split("|")[0] for line in f if line.strip()) == GENRES


def test_items_hold_titles_years_and_genres():
    items = read_items(os.path.join(ML_100K, "u.item"))
    assert len(items) == 1682 and items.ids[:3].tolist() == [1, 2, 3]
    assert items.titles[0] == "Toy Story (1995)" and items.years[0] == 1995
    toy_story = [GENRES[g] for g in np.flatnonzero(items.genres[0])]
    assert toy_story == ["Animation", "Children's", "Comedy"]
    assert items.years[items.ids.tolist().index(267)] == 0  # "unknown": no release date, no year in the title
    assert items.years.max() == 1998 and sorted(set(items.years.tolist()))[1] == 1922
    assert read_titles(os.path.join(ML_100K, "u.item"))[50] == items.titles[49] == "Star Wars (1977)"


def test_users_hold_demographics():
    users = read_users(os.path.join(ML_100K, "u.user"))
    assert len(users) == 943 and users.ids[0] == 1
    first = (users.ages[0], users.genders[0], users.occupations[0], users.zip_codes[0])
    assert first == (24, "M", "technician", "85711")
    assert set(users.genders) == {"M", "F"}
    assert "T8H1N" in users.zip_codes  # Canadian postal codes are kept as written


@pytest.mark.parametrize(
    "name, reader, bad_line, message",
    [
        ("u.item", read_items, "1683|New film (1999)|01-Jan-1999||http://x|0|1\n", "expected 24 |-separated fields"),
        ("u.item", read_items, "1683|New (1999)|||u" + "|0" * 18 + "|2\n", "genre flags must be 0 or 1"),
        ("u.user", read_users, "944|old|M|writer|12345\n", "invalid literal for int"),
        ("u.user", read_users, "944|30|X|writer|12345\n", "gender must be M or F"),
        ("u.data", read_ratings, "1\t2\t3\n", "expected 4 tab-separated fields, got 3"),
    ],
)
def test_malformed_lines_name_file_and_line(tmp_path, name, reader, bad_line, message):
    path = str(tmp_path / name)
    shutil.copy(os.path.join(ML_100K, name), path)
    with open(path, "a", encoding="latin-1") as f:
        f.write(bad_line)
    lines = sum(1 for _ in open(path, encoding="latin-1"))
    with pytest.raises(ChannelError, match=r"%s line %d: .*%s" % (name.replace(".", r"\."), lines, message)):
        reader(path)


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(ChannelError, match=r"user file .*u\.user does not exist"):
        read_users(str(tmp_path / "u.user"))
    (tmp_path / "u.item").write_text("\n")
    with pytest.raises(ChannelError, match="holds no items"):
        read_items(str(tmp_path / "u.item"))
