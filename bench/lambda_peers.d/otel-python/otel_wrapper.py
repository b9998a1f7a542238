"""The handler OpenTelemetry's Lambda Python layer runs instead of the function's own
(`_HANDLER=otel_wrapper.lambda_handler`): it instruments the handler named by
ORIG_HANDLER with the AWS Lambda instrumentor (a SERVER span per invocation, the
provider flushed before the response is returned) and hands that handler to the
runtime. The instrumentor has to run here, after the runtime imported this module:
importing the function's module earlier and reloading it would lose the patch."""

import importlib
import os

from opentelemetry.instrumentation.aws_lambda import AwsLambdaInstrumentor

AwsLambdaInstrumentor().instrument()

_module, _name = os.environ["ORIG_HANDLER"].rsplit(".", 1)
lambda_handler = getattr(importlib.import_module(_module.replace("/", ".")), _name)
