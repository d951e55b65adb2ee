"""The SageMaker SDK's config validation, with its own schema checked once instead of at every lookup.

``sagemaker.utils.get_sagemaker_config_value`` validates a session's config
each time it reads a key, and a fit or a deploy reads dozens. A local session's
config is never empty (it holds the telemetry opt-out), so every lookup pays
``jsonschema.validate``, which first checks the SDK's constant schema against the
JSON Schema metaschema: nearly all of the cost, the same answer every time.
:func:`validate_sagemaker_config` does what ``jsonschema.validate`` does (the
validator class the schema names, the same ``best_match`` error) with the schema
checked on the first call only. :func:`install` puts it where the SDK's lookups
call it; the configs it accepts and the errors it raises are the SDK's.
"""

import functools

import jsonschema
import sagemaker.utils
from sagemaker.config.config_schema import SAGEMAKER_PYTHON_SDK_CONFIG_SCHEMA

__all__ = ["install", "validate_sagemaker_config"]


@functools.lru_cache(maxsize=None)
def _validator():
    cls = jsonschema.validators.validator_for(SAGEMAKER_PYTHON_SDK_CONFIG_SCHEMA)
    cls.check_schema(SAGEMAKER_PYTHON_SDK_CONFIG_SCHEMA)
    return cls(SAGEMAKER_PYTHON_SDK_CONFIG_SCHEMA)


def validate_sagemaker_config(sagemaker_config=None):
    """As ``sagemaker.config.validate_sagemaker_config``: raises ``jsonschema.ValidationError`` for a bad config."""
    error = jsonschema.exceptions.best_match(_validator().iter_errors(sagemaker_config))
    if error is not None:
        raise error


def install():
    """Makes the SDK's config lookups (``sagemaker.utils``) use :func:`validate_sagemaker_config`."""
    sagemaker.utils.validate_sagemaker_config = validate_sagemaker_config
