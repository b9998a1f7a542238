// What OpenTelemetry's Lambda Node layer loads before the runtime (its wrapper), reduced
// to what the benchmark's function uses: a tracer provider with the Lambda resource,
// a BatchSpanProcessor with the OTLP/HTTP (protobuf) exporter to OTEL_EXPORTER_OTLP_*,
// the AWS Lambda instrumentation (a SERVER span per invocation, the provider flushed
// before the response goes out) and the layer's default network instrumentations that
// apply here: http (http and https) and undici (fetch).
"use strict";
const api = require("@opentelemetry/api");
if (process.env.OTEL_LOG_LEVEL) {
  const level = api.DiagLogLevel[process.env.OTEL_LOG_LEVEL.toUpperCase()];
  api.diag.setLogger(new api.DiagConsoleLogger(), level ?? api.DiagLogLevel.INFO);
}
const { NodeTracerProvider } = require("@opentelemetry/sdk-trace-node");
const { BatchSpanProcessor } = require("@opentelemetry/sdk-trace-base");
const { OTLPTraceExporter } = require("@opentelemetry/exporter-trace-otlp-proto");
const { resourceFromAttributes } = require("@opentelemetry/resources");
const { registerInstrumentations } = require("@opentelemetry/instrumentation");
const { AwsLambdaInstrumentation } = require("@opentelemetry/instrumentation-aws-lambda");
const { HttpInstrumentation } = require("@opentelemetry/instrumentation-http");
const { UndiciInstrumentation } = require("@opentelemetry/instrumentation-undici");

const provider = new NodeTracerProvider({
  resource: resourceFromAttributes({
    "service.name": process.env.AWS_LAMBDA_FUNCTION_NAME,
    "cloud.provider": "aws",
    "cloud.region": process.env.AWS_REGION,
    "faas.name": process.env.AWS_LAMBDA_FUNCTION_NAME,
  }),
  spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())],
});
provider.register();
registerInstrumentations({
  tracerProvider: provider,
  instrumentations: [
    new AwsLambdaInstrumentation(),
    // Lambda's own Node runtime talks to the Runtime API through a native client that
    // this instrumentation never sees; the emulator's runtime is plain JavaScript, so
    // its Runtime API calls are left out here the same way.
    new HttpInstrumentation({
      ignoreOutgoingRequestHook: (req) =>
        `${req.hostname || req.host}:${req.port}` === process.env.AWS_LAMBDA_RUNTIME_API,
    }),
    new UndiciInstrumentation(),
  ],
});
