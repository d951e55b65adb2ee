"""Hyperparameters declared once per workload, parsed from every form SageMaker uses.

A workload declares its hyperparameters as a :class:`Hyperparameters` of
:class:`Hyperparameter` entries. From that one declaration come:

* an argparse parser for script mode that accepts ``--batch-size`` and
  ``--batch_size`` (SageMaker passes keys unchanged, see
  ``sagemaker_training.mapping.to_cmd_args``);
* parsing of a plain dict: the legacy ``train(..., hyperparameters=...)`` call,
  ``SM_HPS`` and ``hyperparameters.json``, where SageMaker hands values over
  JSON-encoded as strings (``"0.1"``, ``"\\"adam\\""``, ``"true"``);
* the tuning ranges and the documentation of the workload.

Every value goes through one coercion function, so the same bad value gets the
same error however it arrived. SageMaker's own keys (``sagemaker_*`` and those
starting with ``_``, such as ``_tuning_objective_metric`` or ``_ps_port``) are
ignored.
"""

import argparse
import difflib
import json
import math

__all__ = [
    "Hyperparameter",
    "Hyperparameters",
    "HyperparameterError",
    "is_sagemaker_key",
]

_TRUE = {"true", "1", "yes", "y", "on"}
_FALSE = {"false", "0", "no", "n", "off"}
_TYPES = (int, float, str, bool)
SCALINGS = ("Auto", "Linear", "Logarithmic", "ReverseLogarithmic")


class HyperparameterError(ValueError):
    """A hyperparameter is unknown, of the wrong type or out of range."""


def is_sagemaker_key(name):
    """Tells whether a hyperparameter key belongs to SageMaker rather than to the workload.

    Args:
        name (str): the key as received.

    Returns:
        bool: True for ``sagemaker_*`` keys and keys starting with ``_``.
    """
    key = name.lstrip("-").replace("-", "_")
    return key.startswith("sagemaker_") or key.startswith("_")


def _type_name(kind):
    return {int: "an integer", float: "a number", str: "a string", bool: "a boolean (true/false)"}[kind]


class Hyperparameter:
    """One hyperparameter of a workload.

    Args:
        name (str): the key, in snake_case (``batch_size``).
        type (type): one of int, float, str, bool.
        default: the default value, of that type (``None`` allowed for optional ones).
        help (str): what it does; the default is appended automatically.
        min (number): smallest allowed value (inclusive), for int and float.
        max (number): largest allowed value (inclusive), for int and float.
        choices (list): the allowed values, for str and int.
        tune (tuple or list): the tuning range: ``(low, high)`` or
            ``(low, high, scaling)`` for numbers, with scaling one of
            ``Auto``, ``Linear``, ``Logarithmic``, ``ReverseLogarithmic``; a list
            of values for categorical ones. ``None`` means not tunable.
    """

    def __init__(self, name, type, default, help, *, min=None, max=None, choices=None, tune=None):
        if type not in _TYPES:
            raise TypeError("hyperparameter %r: type must be one of int, float, str, bool" % name)
        self.name = name
        self.type = type
        self.help = help
        self.min = min
        self.max = max
        self.choices = list(choices) if choices is not None else None
        self.default = default if default is None else self.coerce(default)
        self.tune = self._check_tune(tune)

    def _check_tune(self, tune):
        if tune is None:
            return None
        if isinstance(tune, list):
            return [self.coerce(v) for v in tune]
        if self.type not in (int, float):
            raise TypeError("hyperparameter %r: a (low, high) tuning range needs an int or float" % self.name)
        low, high = self.coerce(tune[0]), self.coerce(tune[1])
        scaling = tune[2] if len(tune) > 2 else "Auto"
        if scaling not in SCALINGS or low >= high:
            raise ValueError("hyperparameter %r: bad tuning range %r" % (self.name, tune))
        return (low, high, scaling)

    @property
    def flag(self):
        """str: the dashed command-line flag, e.g. ``--batch-size``."""
        return "--" + self.name.replace("_", "-")

    def allowed(self):
        """Describes the allowed values in words, for error messages and help."""
        if self.choices is not None:
            return "one of " + ", ".join(json.dumps(c) for c in self.choices)
        text = _type_name(self.type)
        if self.min is not None and self.max is not None:
            text += " in [%s, %s]" % (self.min, self.max)
        elif self.min is not None:
            text += " >= %s" % self.min
        elif self.max is not None:
            text += " <= %s" % self.max
        return text

    def _fail(self, value):
        return HyperparameterError(
            "hyperparameter %s=%s is not allowed: expected %s"
            % (self.name, json.dumps(value, default=str), self.allowed())
        )

    def coerce(self, value):
        """Converts a value as SageMaker or a user hands it over into this hyperparameter's type.

        Accepts native values (``0.1``, ``True``), their string forms (``"0.1"``,
        ``"true"``) and JSON-encoded strings (``"\\"adam\\""``).

        Args:
            value: the raw value.

        Returns:
            the value, of ``self.type``.

        Raises:
            HyperparameterError: naming the parameter, the value and what is allowed.
        """
        raw = value
        if isinstance(value, bytes):
            value = value.decode("utf-8")
        if isinstance(value, str) and self.type is not str:
            text = value.strip()
            try:
                value = json.loads(text)
            except ValueError:
                value = text
        elif isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
            try:
                value = json.loads(value)
            except ValueError:
                pass
        try:
            result = self._convert(value)
        except (TypeError, ValueError, OverflowError):
            raise self._fail(raw) from None
        self._check_bounds(result, raw)
        return result

    def _convert(self, value):
        if self.type is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, (int, float)) and value in (0, 1):
                return bool(value)
            if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
                return value.lower() in _TRUE
            raise ValueError(value)
        if isinstance(value, bool):
            raise TypeError(value)  # True is not an epoch count
        if self.type is int:
            if isinstance(value, float) and value.is_integer():
                return int(value)
            if isinstance(value, int):
                return value
            raise ValueError(value)
        if self.type is float:
            if isinstance(value, (int, float)) and math.isfinite(value):
                return float(value)
            raise ValueError(value)
        if isinstance(value, str):
            return value
        raise TypeError(value)

    def _check_bounds(self, value, raw):
        if self.choices is not None and value not in self.choices:
            raise self._fail(raw)
        if self.min is not None and value < self.min:
            raise self._fail(raw)
        if self.max is not None and value > self.max:
            raise self._fail(raw)

    def help_text(self):
        """str: the help string with the default stated."""
        return "%s (default: %s)" % (self.help, json.dumps(self.default))


class Hyperparameters:
    """The hyperparameters of one workload.

    Args:
        params (list[Hyperparameter]): the declarations.
        description (str): the workload's description, for ``--help``.
    """

    def __init__(self, params, description=None):
        self.params = {}
        for p in params:
            if p.name in self.params:
                raise ValueError("hyperparameter %r declared twice" % p.name)
            self.params[p.name] = p
        self.description = description

    def __iter__(self):
        return iter(self.params.values())

    def __getitem__(self, name):
        return self.params[name]

    def defaults(self):
        """dict: every hyperparameter's default value."""
        return {p.name: p.default for p in self}

    def tunable(self):
        """dict: name → tuning range (tuple) or choices (list), for the tunable ones."""
        return {p.name: p.tune for p in self if p.tune is not None}

    def _lookup(self, key):
        name = key.lstrip("-").replace("-", "_")
        if name in self.params:
            return self.params[name]
        close = difflib.get_close_matches(name, list(self.params), n=1, cutoff=0.6)
        hint = " Did you mean %r?" % close[0] if close else ""
        raise HyperparameterError(
            "unknown hyperparameter %r.%s Known: %s." % (key, hint, ", ".join(sorted(self.params)))
        )

    def parse_dict(self, values):
        """Parses a mapping of hyperparameters, filling in defaults.

        This is the path for the legacy ``train(hyperparameters=...)`` call,
        ``SM_HPS`` and ``hyperparameters.json``: values may be native or
        JSON-encoded strings. SageMaker's own keys are ignored.

        Args:
            values (dict): key → value; keys may use ``-`` or ``_``.

        Returns:
            dict: every hyperparameter's name → typed value.

        Raises:
            HyperparameterError: for an unknown key, a bad type or an out-of-range value.
        """
        result = self.defaults()
        for key, value in (values or {}).items():
            if is_sagemaker_key(key):
                continue
            param = self._lookup(key)
            result[param.name] = param.coerce(value)
        return result

    def parse_json(self, text):
        """Parses a JSON object such as ``SM_HPS`` or the content of ``hyperparameters.json``."""
        try:
            values = json.loads(text)
        except ValueError as e:
            raise HyperparameterError("hyperparameters are not valid JSON (%s): %r" % (e, text[:200])) from None
        if not isinstance(values, dict):
            raise HyperparameterError("hyperparameters must be a JSON object, got %r" % text[:200])
        return self.parse_dict(values)

    def add_arguments(self, parser):
        """Adds one option per hyperparameter to an argparse parser.

        Each option takes both spellings (``--batch-size`` and ``--batch_size``)
        and keeps the raw string: coercion happens in :meth:`parse_args`, so a
        bad value gets the same message as on the dict path.

        Args:
            parser (argparse.ArgumentParser): the parser to add to.
        """
        group = parser.add_argument_group("hyperparameters")
        for p in self:
            flags = [p.flag] if p.flag == "--" + p.name else [p.flag, "--" + p.name]
            kwargs = {
                "dest": p.name,
                "default": argparse.SUPPRESS,
                "help": p.help_text(),
                "metavar": p.type.__name__.upper(),
            }
            if p.type is bool:
                # SageMaker passes "--flag True"; a bare "--flag" means true as well.
                kwargs.update(nargs="?", const="true", metavar="BOOL")
            group.add_argument(*flags, **kwargs)

    def parser(self, prog=None):
        """Builds the script-mode argument parser.

        Returns:
            argparse.ArgumentParser
        """
        parser = _Parser(prog=prog, description=self.description, allow_abbrev=False)
        self.add_arguments(parser)
        return parser

    def parse_args(self, argv=None, parser=None):
        """Parses script-mode command-line arguments.

        Args:
            argv (list[str]): the arguments; ``None`` means ``sys.argv[1:]``.
            parser (argparse.ArgumentParser): a parser built by :meth:`parser`
                with extra options added by the caller; ``None`` builds one.

        Returns:
            tuple(dict, argparse.Namespace): the typed hyperparameters (defaults
            filled in) and the namespace holding any extra options.

        Raises:
            HyperparameterError: for an unknown option, a bad type or an out-of-range value.
        """
        parser = parser or self.parser()
        namespace, unknown = parser.parse_known_args(argv)
        _check_unknown(unknown, self)
        raw = {p.name: getattr(namespace, p.name) for p in self if hasattr(namespace, p.name)}
        for name in raw:
            delattr(namespace, name)
        return self.parse_dict(raw), namespace

    def markdown_table(self):
        """str: a Markdown table documenting every hyperparameter."""
        rows = ["| name | type | default | allowed | tuning range | description |", "|---|---|---|---|---|---|"]
        for p in self:
            rows.append(
                "| `%s` | %s | `%s` | %s | %s | %s |"
                % (p.name, p.type.__name__, json.dumps(p.default), p.allowed(), _describe_tune(p.tune), p.help)
            )
        return "\n".join(rows)


def _describe_tune(tune):
    if tune is None:
        return ""
    if isinstance(tune, list):
        return ", ".join(json.dumps(v) for v in tune)
    return "%s to %s (%s)" % tune


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors raise instead of exiting, so they reach the failure file."""

    def error(self, message):
        raise HyperparameterError("bad command line: %s" % message)


def _check_unknown(tokens, hps):
    """Rejects leftover command-line tokens, skipping SageMaker's own keys and their values."""
    i = 0
    while i < len(tokens):
        token = tokens[i]
        key = token.split("=", 1)[0]
        if key.startswith("-") and is_sagemaker_key(key):
            has_value = "=" not in token and i + 1 < len(tokens) and not tokens[i + 1].startswith("--")
            i += 2 if has_value else 1
            continue
        if key.startswith("-"):
            hps._lookup(key)  # raises with a did-you-mean suggestion
        raise HyperparameterError("unexpected argument %r: hyperparameters are given as --name value" % token)
