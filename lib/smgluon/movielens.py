"""Reading the GroupLens MovieLens-100k files (the layout of ml-100k.zip).

* ``u.data`` and the split files (``u1.base``, ``ua.test``, ...): ratings,
  ``user item rating timestamp``, tab-separated;
* ``u.item``: movies, ``|``-separated, latin-1: id, title with year, release
  date, video release date, IMDb URL, then 19 genre flags in the order of
  :data:`GENRES` (``u.genre``);
* ``u.user``: users, ``|``-separated: id, age, gender, occupation, zip code.

Every fault is a :class:`~smgluon.channels.ChannelError` naming the file and,
for a malformed line, its number and content.
"""

import os
import re

import numpy as np

from smgluon.channels import ChannelError

__all__ = ["GENRES", "MIN_RATING", "MAX_RATING", "read_ratings", "read_titles", "read_items", "read_users"]

MIN_RATING, MAX_RATING = 1, 5

# u.genre: the order of the 19 genre flags in u.item
GENRES = (
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)

_TITLE_YEAR = re.compile(r"\((\d{4})\)\s*$")


def _records(path, what, separator):
    """Yields (line number, fields, line) of a text file, skipping blank lines."""
    if not os.path.isfile(path):
        raise ChannelError("%s file %s does not exist" % (what, path))
    with open(path, encoding="latin-1") as f:
        for number, line in enumerate(f, 1):
            if line.strip():
                yield number, line.rstrip("\r\n").split(separator), line


def _fault(path, number, error, line):
    return ChannelError("%s line %d: %s: %r" % (path, number, error, line[:80]))


def read_ratings(path):
    """Reads a GroupLens ratings file (``user item rating timestamp``, tab-separated).

    Args:
        path (str): ``u.data``, ``u1.base``, ...

    Returns:
        numpy.ndarray: int64 (N, 4) of user id, item id, rating, timestamp.

    Raises:
        ChannelError: naming the file and the line of the first fault.
    """
    rows = []
    for number, fields, line in _records(path, "ratings", "\t"):
        try:
            if len(fields) != 4:
                raise ValueError("expected 4 tab-separated fields, got %d" % len(fields))
            user, item, rating, timestamp = (int(x) for x in fields)
            if not MIN_RATING <= rating <= MAX_RATING:
                raise ValueError("rating %d is outside 1-5" % rating)
        except ValueError as e:
            raise _fault(path, number, e, line) from None
        rows.append((user, item, rating, timestamp))
    if not rows:
        raise ChannelError("ratings file %s holds no ratings" % path)
    return np.asarray(rows, dtype=np.int64)


def read_titles(path):
    """Reads ``u.item``'s first two fields: item id → title.

    Raises:
        ChannelError: naming the file and the line of the first fault.
    """
    if not os.path.isfile(path):
        raise ChannelError("item file %s does not exist (it holds the titles: u.item of ml-100k)" % path)
    titles = {}
    for number, fields, line in _records(path, "item", "|"):
        try:
            if len(fields) < 2:
                raise ValueError("expected |-separated fields: id|title|...")
            titles[int(fields[0])] = fields[1]
        except ValueError as e:
            raise _fault(path, number, e, line) from None
    return titles


class Items:
    """The movies of ``u.item``, in file order.

    Attributes:
        ids (numpy.ndarray): int64 item ids.
        titles (list[str]): titles as written, with the year (``"Toy Story (1995)"``).
        years (numpy.ndarray): int64 release year (from the release date, else the
            title), 0 when unknown.
        genres (numpy.ndarray): uint8 (N, 19) genre flags in the order of :data:`GENRES`.
    """

    def __init__(self, ids, titles, years, genres):
        self.ids = np.asarray(ids, dtype=np.int64)
        self.titles = list(titles)
        self.years = np.asarray(years, dtype=np.int64)
        self.genres = np.asarray(genres, dtype=np.uint8).reshape(len(self.ids), len(GENRES))

    def __len__(self):
        return len(self.ids)


def _year(release_date, title):
    # release dates read "01-Jan-1995"; item 267 has none, and its title is "unknown"
    tail = release_date.rsplit("-", 1)[-1]
    if tail.isdigit() and len(tail) == 4:
        return int(tail)
    match = _TITLE_YEAR.search(title)
    return int(match.group(1)) if match else 0


def read_items(path):
    """Reads ``u.item``: ids, titles, release years and genre flags.

    Raises:
        ChannelError: naming the file and the line of the first fault.
    """
    ids, titles, years, genres = [], [], [], []
    for number, fields, line in _records(path, "item", "|"):
        try:
            if len(fields) != 5 + len(GENRES):
                raise ValueError(
                    "expected %d |-separated fields (id|title|release date|video date|URL|19 genre flags), got %d"
                    % (5 + len(GENRES), len(fields))
                )
            flags = [int(x) for x in fields[5:]]
            if set(flags) - {0, 1}:
                raise ValueError("genre flags must be 0 or 1")
            ids.append(int(fields[0]))
        except ValueError as e:
            raise _fault(path, number, e, line) from None
        titles.append(fields[1])
        years.append(_year(fields[2], fields[1]))
        genres.append(flags)
    if not ids:
        raise ChannelError("item file %s holds no items" % path)
    if len(set(ids)) != len(ids):
        raise ChannelError("item file %s repeats item ids" % path)
    return Items(ids, titles, years, genres)


class Users:
    """The users of ``u.user``, in file order.

    Attributes:
        ids (numpy.ndarray): int64 user ids.
        ages (numpy.ndarray): int64 ages in years.
        genders (list[str]): ``"M"`` or ``"F"``.
        occupations (list[str]): as in ``u.occupation`` (``"technician"``, ...).
        zip_codes (list[str]): as written (US zip codes, a few Canadian postal codes).
    """

    def __init__(self, ids, ages, genders, occupations, zip_codes):
        self.ids = np.asarray(ids, dtype=np.int64)
        self.ages = np.asarray(ages, dtype=np.int64)
        self.genders = list(genders)
        self.occupations = list(occupations)
        self.zip_codes = list(zip_codes)

    def __len__(self):
        return len(self.ids)


def read_users(path):
    """Reads ``u.user``: ids, ages, genders, occupations and zip codes.

    Raises:
        ChannelError: naming the file and the line of the first fault.
    """
    columns = [[], [], [], [], []]
    for number, fields, line in _records(path, "user", "|"):
        try:
            if len(fields) != 5:
                raise ValueError("expected 5 |-separated fields (id|age|gender|occupation|zip), got %d" % len(fields))
            user, age = int(fields[0]), int(fields[1])
            if fields[2] not in ("M", "F"):
                raise ValueError("gender must be M or F")
        except ValueError as e:
            raise _fault(path, number, e, line) from None
        for column, value in zip(columns, (user, age, fields[2], fields[3], fields[4])):
            column.append(value)
    if not columns[0]:
        raise ChannelError("user file %s holds no users" % path)
    if len(set(columns[0])) != len(columns[0]):
        raise ChannelError("user file %s repeats user ids" % path)
    return Users(*columns)
