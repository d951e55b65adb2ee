"""The SageMaker MXNet handler service, with its default ``model_fn`` made to work with sagemaker-inference 1.10.

The model server's workers load this module (``default_service_handler``) instead of
``sagemaker_mxnet_serving_container.handler_service``, whose handler service it
subclasses unchanged, after one fix to the default handler.

sagemaker-inference 1.7.0 (August 2022) began passing the model server's request
context as an extra positional argument to any handler function that takes one more
parameter than it is given. sagemaker-mxnet-inference 1.5.5 (May 2022, the last
release) predates that: its ``default_model_fn(model_dir, preferred_batch_size=1)``
gets the context as the batch size, and every request to a Module checkpoint served
without a ``model_fn`` answers 500 ("unsupported operand type(s) for *: 'int' and
'Context'"). The MXNet 1.9 inference container was built against sagemaker-inference
1.6.1, which passes no context. We keep 1.10.1 because our own entry points use the
context to answer client errors with a 4xx and the message alone
(``smgluon.serving.answer_request_errors``), so the default ``model_fn`` takes only
``model_dir`` here: it is then called as in the container.

Each request first goes through :mod:`smgluon_local.request_guard`, which answers
bodies the toolkit would fail on (over the size limit, text that is not UTF-8,
JSON nested too deep) with a 4xx and one line; every other request reaches the
toolkit unchanged.
"""

from sagemaker_mxnet_serving_container import handler_service
from sagemaker_mxnet_serving_container.default_inference_handler import DefaultMXNetInferenceHandler

from smgluon_local import request_guard

__all__ = ["HandlerService"]

_toolkit_default_model_fn = DefaultMXNetInferenceHandler.default_model_fn


def _default_model_fn(self, model_dir):
    # One parameter besides self, so sagemaker-inference passes model_dir alone and the
    # batch size keeps the toolkit's default of 1, as in the container.
    return _toolkit_default_model_fn(self, model_dir)


_default_model_fn.__doc__ = _toolkit_default_model_fn.__doc__
DefaultMXNetInferenceHandler.default_model_fn = _default_model_fn


class HandlerService(handler_service.HandlerService):
    """The container's handler service behind the request guard (the model server loads the one class defined here)."""

    def handle(self, data, context):
        """Answers a request the guard rejects with its 4xx; passes every other one to the toolkit."""
        if len(data) == 1:  # the model server's batch size is 1 here, as in the container
            body = data[0].get("body")
            if body is None:
                body = data[0].get("data")
            if isinstance(body, (bytes, bytearray, str)):
                headers = context.request_processor[0].get_request_properties()
                content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), None)
                try:
                    request_guard.check(body, content_type)
                except request_guard.RequestRejected as error:
                    return [request_guard.answer(error, context)]
        return super().handle(data, context)
