"""Job statuses, and the exception a failed training or transform job raises."""

from sagemaker.exceptions import UnexpectedStatusException
from sagemaker.session import _check_job_status as _sdk_check_job_status

__all__ = ["IN_PROGRESS", "COMPLETED", "FAILED", "STOPPING", "STOPPED", "JobFailedError", "check_job_status"]

# A training or transform job's status, as DescribeTrainingJob / DescribeTransformJob report it.
IN_PROGRESS, COMPLETED, FAILED, STOPPING, STOPPED = "InProgress", "Completed", "Failed", "Stopping", "Stopped"


class JobFailedError(UnexpectedStatusException, RuntimeError):
    """A job that ended Failed, with its FailureReason in the message.

    The SDK raises ``UnexpectedStatusException`` for real SageMaker jobs and its Docker
    local mode raises ``RuntimeError``; code written for either catches this.
    """


def check_job_status(job, desc, status_key_name):
    """As the SDK's ``_check_job_status``, raising ``JobFailedError``."""
    try:
        _sdk_check_job_status(job, desc, status_key_name)
    except UnexpectedStatusException as e:
        raise JobFailedError(str(e), e.allowed_statuses, e.actual_status) from None
