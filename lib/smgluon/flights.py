"""The NYC flights 2013 departure-delay table: its CSV schema, shared by the data writer and the workload.

``smgluon data fetch nyc-flights`` writes CSV files with exactly these columns
(a header line, then one flight per line), and ``entry_points/nyc_flights.py``
reads them. The target comes first, as SageMaker's built-in algorithms expect
of CSV data; every other column is known before the flight leaves the gate.
Anything measured at or after departure (:data:`POST_DEPARTURE`) is not a
feature, and a channel whose header carries one is refused: that would be a
leak of the answer into the inputs.

Weather is the origin airport's reading of the hour *before* the scheduled
hour: a ``weather`` row labelled with hour H holds a reading taken at about
H:51, after a flight scheduled at H:00–H:50 left, so the previous hour's row is
the last one surely known at departure.
"""

__all__ = ["Column", "COLUMNS", "TARGET", "FEATURES", "CATEGORICAL", "NUMERIC", "NULLABLE", "POST_DEPARTURE"]


class Column:
    """One column of the table.

    Args:
        name (str): the header name.
        kind (str): ``"category"`` (a code, embedded by the model) or ``"number"``.
        description (str): what it holds, with its unit.
        nullable (bool): the cell may be empty (unknown plane, missing weather reading).
    """

    def __init__(self, name, kind, description, nullable=False):
        self.name = name
        self.kind = kind
        self.description = description
        self.nullable = nullable

    def to_json(self):
        return {"name": self.name, "type": self.kind, "nullable": self.nullable, "description": self.description}


TARGET = "dep_delay"

COLUMNS = [
    Column(TARGET, "number", "departure delay in minutes (negative: early); the target"),
    Column("month", "number", "month of the scheduled departure, 1-12"),
    Column("day", "number", "day of the month, 1-31"),
    Column("weekday", "category", "day of the week, 0 (Monday) to 6 (Sunday)"),
    Column("hour", "category", "scheduled departure hour, local time, 0-23"),
    Column("minute", "number", "scheduled departure minute, 0-59"),
    Column("carrier", "category", "two-letter airline code (UA, AA, ...)"),
    Column("origin", "category", "departure airport (EWR, JFK, LGA)"),
    Column("dest", "category", "destination airport FAA code"),
    Column("distance", "number", "distance between the airports in miles"),
    Column("plane_year", "number", "year the plane was built (planes table, by tailnum)", nullable=True),
    Column("plane_seats", "number", "seats in the plane", nullable=True),
    Column("plane_engines", "number", "engines of the plane", nullable=True),
    Column("temp", "number", "origin temperature, F (the reading of the hour before departure)", nullable=True),
    Column("dewp", "number", "origin dew point, F", nullable=True),
    Column("humid", "number", "origin relative humidity, %", nullable=True),
    Column("wind_dir", "number", "origin wind direction, degrees", nullable=True),
    Column("wind_speed", "number", "origin wind speed, mph", nullable=True),
    Column("wind_gust", "number", "origin wind gust speed, mph", nullable=True),
    Column("precip", "number", "origin precipitation, inches", nullable=True),
    Column("pressure", "number", "origin sea level pressure, millibars", nullable=True),
    Column("visib", "number", "origin visibility, miles", nullable=True),
]

FEATURES = [c.name for c in COLUMNS if c.name != TARGET]
CATEGORICAL = [c.name for c in COLUMNS if c.kind == "category"]
NUMERIC = [c.name for c in COLUMNS if c.kind == "number" and c.name != TARGET]
NULLABLE = [c.name for c in COLUMNS if c.nullable]

# Columns of the flights table measured at or after departure: never features.
POST_DEPARTURE = ("dep_time", "arr_time", "arr_delay", "air_time")
