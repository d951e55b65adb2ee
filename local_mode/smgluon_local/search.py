"""Search strategies of a local tuning job: what the next trial's hyperparameters are.

A tuning request carries its ranges as the SDK sends them (``ParameterRanges``
with ``ContinuousParameterRanges``, ``IntegerParameterRanges`` and
``CategoricalParameterRanges``; every value a string, categorical values
JSON-encoded for framework estimators). :class:`SearchSpace` reads them, and a
strategy proposes trials as the training jobs get their hyperparameters on
SageMaker, as strings:

* ``Random``: Optuna's ``RandomSampler``;
* ``Bayesian``: Optuna's TPE sampler (``TPESampler``; random for the first
  trials, then a model of the results so far; pending trials count as a
  "constant liar" so parallel trials spread out);
* ``Grid``: every combination of categorical values and integers in order,
  for ranges that are all categorical or integer (as SageMaker's Grid requires).

Scaling: ``Linear`` and ``Auto`` sample uniformly, ``Logarithmic`` uniformly in
log space (the range must be positive), ``ReverseLogarithmic`` (continuous,
within [0, 1)) uniformly in log space of ``1 - value``, so values near 1 are denser.
"""

import contextlib
import itertools
import logging
import math
import threading

__all__ = ["SearchSpace", "SearchError", "make_strategy", "STRATEGIES"]

STRATEGIES = ("Bayesian", "Random", "Grid")
_KINDS = (("ContinuousParameterRanges", "continuous"), ("IntegerParameterRanges", "integer"),
          ("CategoricalParameterRanges", "categorical"))


_QUIET = threading.local()


class _QuietFilter(logging.Filter):
    """Drops Optuna's INFO lines ("Trial 3 finished with value ...") logged on behalf of a tuning job."""

    def filter(self, record):
        return record.levelno >= logging.WARNING or not getattr(_QUIET, "active", False)


_QUIET_FILTER = _QuietFilter()


@contextlib.contextmanager
def _quiet_optuna():
    """A tuning job reports its trials itself: hush Optuna's per-trial INFO lines in this thread only."""
    for name in ("optuna.storages._in_memory", "optuna.study.study", "optuna.study._tell"):
        logger = logging.getLogger(name)
        if _QUIET_FILTER not in logger.filters:
            logger.addFilter(_QUIET_FILTER)
    _QUIET.active = True
    try:
        yield
    finally:
        _QUIET.active = False


class SearchError(ValueError):
    """The ranges or the strategy of a tuning request cannot be searched (a validation error)."""


class Param:
    """One tuned hyperparameter.

    Attributes:
        name (str): The hyperparameter.
        kind (str): ``continuous``, ``integer`` or ``categorical``.
        low, high (float or int): The range (numeric kinds).
        scaling (str): ``Auto``, ``Linear``, ``Logarithmic`` or ``ReverseLogarithmic``.
        values (list of str): The choices (categorical), as sent.
    """

    def __init__(self, name, kind, low=None, high=None, scaling="Auto", values=None):
        self.name, self.kind, self.low, self.high, self.scaling, self.values = name, kind, low, high, scaling, values

    def distribution(self):
        """The Optuna distribution sampled for this parameter (``1 - value`` for ReverseLogarithmic)."""
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        if self.kind == "categorical":
            return CategoricalDistribution(self.values)
        if self.kind == "integer":
            return IntDistribution(self.low, self.high, log=self.scaling == "Logarithmic")
        if self.scaling == "ReverseLogarithmic":
            return FloatDistribution(1.0 - self.high, 1.0 - self.low, log=True)
        return FloatDistribution(self.low, self.high, log=self.scaling == "Logarithmic")

    def encode(self, sampled):
        """The hyperparameter string a training job gets for a sampled value."""
        if self.kind == "categorical":
            return sampled
        if self.kind == "integer":
            return str(int(sampled))
        value = 1.0 - sampled if self.scaling == "ReverseLogarithmic" else sampled
        return repr(min(max(float(value), self.low), self.high))

    def grid_values(self):
        """Every value of a categorical or integer range, as strings, in order."""
        if self.kind == "categorical":
            return list(self.values)
        if self.kind == "integer":
            return [str(v) for v in range(self.low, self.high + 1)]
        raise SearchError("Grid search needs every tuned range to be categorical or integer; %r is continuous "
                          "(%s to %s). Use strategy Random or Bayesian, fix %s as a static hyperparameter, or give "
                          "it as a CategoricalParameter of the values to try"
                          % (self.name, _fmt(self.low), _fmt(self.high), self.name))


def _fmt(x):
    return "%g" % x


def _number(text, kind, name, field):
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise SearchError("range %r: %s %r is not a number" % (name, field, text)) from None
    if not math.isfinite(value):
        raise SearchError("range %r: %s must be finite, got %r" % (name, field, text))
    if kind == "integer":
        if not value.is_integer():
            raise SearchError("range %r: %s of an integer range must be an integer, got %r" % (name, field, text))
        return int(value)
    return value


def _param(kind, entry):
    name = entry.get("Name")
    if not name:
        raise SearchError("a %s parameter range has no Name" % kind)
    if kind == "categorical":
        values = entry.get("Values")
        if not values or not isinstance(values, list):
            raise SearchError("range %r: Values must be a non-empty list" % name)
        if len(set(values)) != len(values):
            raise SearchError("range %r: Values has duplicates: %s" % (name, values))
        return Param(name, kind, values=[str(v) for v in values])
    low = _number(entry.get("MinValue"), kind, name, "MinValue")
    high = _number(entry.get("MaxValue"), kind, name, "MaxValue")
    scaling = entry.get("ScalingType") or "Auto"
    if scaling not in ("Auto", "Linear", "Logarithmic", "ReverseLogarithmic"):
        raise SearchError("range %r: ScalingType must be Auto, Linear, Logarithmic or ReverseLogarithmic, got %r"
                          % (name, scaling))
    if low > high:
        raise SearchError("range %r: MinValue %s is above MaxValue %s" % (name, _fmt(low), _fmt(high)))
    if scaling == "Logarithmic" and low <= 0:
        raise SearchError("range %r: Logarithmic scaling needs MinValue > 0, got %s" % (name, _fmt(low)))
    if scaling == "ReverseLogarithmic" and (kind == "integer" or low < 0 or high >= 1):
        raise SearchError("range %r: ReverseLogarithmic scaling is for continuous ranges within [0, 1), got %s to %s"
                          % (name, _fmt(low), _fmt(high)))
    return Param(name, kind, low, high, scaling)


class SearchSpace:
    """The tuned hyperparameters of a request's ``ParameterRanges``.

    Args:
        parameter_ranges (dict): ``{"ContinuousParameterRanges": [...], ...}`` as the SDK sends it.
        static (iterable of str): Static hyperparameter names (a tuned one may not be static too).

    Raises:
        SearchError: For a malformed range, a name tuned twice or tuned and static,
            ``AutoParameters``, or no range at all.
    """

    def __init__(self, parameter_ranges, static=()):
        parameter_ranges = parameter_ranges or {}
        if parameter_ranges.get("AutoParameters"):
            raise SearchError("AutoParameters (autotune) are not supported locally; give explicit ranges")
        unknown = set(parameter_ranges) - {key for key, _ in _KINDS} - {"AutoParameters"}
        if unknown:
            raise SearchError("unknown ParameterRanges keys: %s" % ", ".join(sorted(unknown)))
        self.params = []
        for key, kind in _KINDS:
            self.params.extend(_param(kind, entry) for entry in parameter_ranges.get(key) or [])
        names = [p.name for p in self.params]
        if not names:
            raise SearchError("no hyperparameter ranges to tune: give at least one ContinuousParameter, "
                              "IntegerParameter or CategoricalParameter")
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise SearchError("hyperparameters with more than one range: %s" % ", ".join(twice))
        both = sorted(set(names) & set(static))
        if both:
            raise SearchError("hyperparameters both tuned and static: %s; drop them from the estimator's "
                              "hyperparameters or from the ranges" % ", ".join(both))

    def grid(self):
        """Every combination of the grid values, in order.

        Returns:
            tuple(int, iterator of dict): The number of combinations, and the
            combinations as ``{name: value string}``.

        Raises:
            SearchError: If a range is continuous.
        """
        columns = [p.grid_values() for p in self.params]
        size = math.prod(len(c) for c in columns)
        names = [p.name for p in self.params]
        return size, (dict(zip(names, combo)) for combo in itertools.product(*columns))


class _OptunaStrategy:
    """Random or Bayesian (TPE) search through an Optuna study, driven by ask and tell."""

    def __init__(self, space, sampler, maximize):
        import optuna

        self.space = space
        self.distributions = {p.name: p.distribution() for p in space.params}
        with _quiet_optuna():
            self.study = optuna.create_study(direction="maximize" if maximize else "minimize", sampler=sampler)
        self.lock = threading.Lock()  # trial threads report while the scheduler asks

    def ask(self):
        with self.lock, _quiet_optuna():
            trial = self.study.ask(self.distributions)
        return trial, {p.name: p.encode(trial.params[p.name]) for p in self.space.params}

    def report(self, token, step, value):
        if math.isfinite(value):
            with self.lock:
                token.report(value, step)

    def tell(self, token, value, stopped=False):
        from optuna.trial import TrialState

        with self.lock, _quiet_optuna():
            if stopped:
                self.study.tell(token, state=TrialState.PRUNED)
            elif value is None or not math.isfinite(value):
                self.study.tell(token, state=TrialState.FAIL)
            else:
                self.study.tell(token, value)


class _GridStrategy:
    """Every grid combination once, in order."""

    def __init__(self, space):
        self.size, self._combos = space.grid()
        self.lock = threading.Lock()

    def ask(self):
        with self.lock:
            combo = next(self._combos, None)
        return (None, combo) if combo is not None else None

    def report(self, token, step, value):
        pass

    def tell(self, token, value, stopped=False):
        pass


def make_strategy(strategy, space, objective_type, seed=None, max_jobs=None):
    """The search strategy of a tuning job.

    Args:
        strategy (str): ``Bayesian``, ``Random`` or ``Grid``.
        space (SearchSpace): The tuned hyperparameters.
        objective_type (str): ``Maximize`` or ``Minimize``.
        seed (int): The request's RandomSeed (None: not reproducible).
        max_jobs (int): How many trials there will be (sizes TPE's random start).

    Returns:
        An object with ``ask() -> (token, {name: value string})`` (None when a
        grid is exhausted), ``report(token, step, value)`` for intermediate
        objective values and ``tell(token, value, stopped=False)``.

    Raises:
        SearchError: For an unknown or unsupported strategy, or a Grid over a continuous range.
    """
    if strategy == "Grid":
        return _GridStrategy(space)
    if strategy not in STRATEGIES:
        hint = " (Hyperband needs the SageMaker service)" if strategy == "Hyperband" else ""
        raise SearchError("strategy %r is not supported locally%s: use one of %s" % (strategy, hint,
                                                                                     ", ".join(STRATEGIES)))
    import optuna

    if strategy == "Random":
        sampler = optuna.samplers.RandomSampler(seed=seed)
    else:
        # As SageMaker's Bayesian search: random trials first, then the model (at most 10 random, as TPE's default).
        startup = max(1, min(10, (max_jobs or 10) // 3))
        sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup)
    return _OptunaStrategy(space, sampler, objective_type == "Maximize")
