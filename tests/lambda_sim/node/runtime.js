// A Lambda runtime client in plain JavaScript, for the emulator (tests/lambda_sim).
//
// Why our own: AWS's Node runtime interface client needs a native build. This one
// speaks the Runtime API as Lambda's Node runtime does — `invocation/next`, then the
// handler's result to `invocation/<id>/response` (or `/error`) — over one kept-alive
// connection, and supports response streaming: a handler wrapped by
// `awslambda.streamifyResponse` gets a writable stream, which goes out as a chunked POST
// with `Lambda-Runtime-Function-Response-Mode: streaming`; the invocation ends when that
// body ends (`end()`), and an error thrown mid-stream goes in the trailers.
//
//   node runtime.js <module>.<export>      (the module is looked up in the cwd)
"use strict";
const http = require("http");
const path = require("path");

const [host, port] = process.env.AWS_LAMBDA_RUNTIME_API.split(":");
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const BASE = "/2018-06-01/runtime";
const STREAMING = Symbol.for("aws.lambda.runtime.handler.streaming");

globalThis.awslambda = {
  streamifyResponse(fn) {
    fn[STREAMING] = "response";
    return fn;
  },
};

function request(method, url, headers, body) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host, port, method, path: url, headers, agent }, (res) => {
      const parts = [];
      res.on("data", (d) => parts.push(d));
      res.on("end", () =>
        resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(parts) }),
      );
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}

function errorBody(e) {
  return JSON.stringify({
    errorType: (e && e.name) || "Error",
    errorMessage: (e && e.message) || String(e),
  });
}

async function postError(id, e) {
  await request("POST", `${BASE}/invocation/${id}/error`, {
    "Content-Type": "application/json",
    "Lambda-Runtime-Function-Error-Type": "Runtime.UserCodeError",
  }, errorBody(e));
}

// The streamed response: the POST's head goes out at once, each write is a chunk.
function streamResponse(id, handler, event, context) {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host, port, agent, method: "POST", path: `${BASE}/invocation/${id}/response`,
      headers: {
        "Lambda-Runtime-Function-Response-Mode": "streaming",
        "Transfer-Encoding": "chunked",
        "Content-Type": "application/octet-stream",
        Trailer: "Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body",
      },
    }, (res) => {
      res.resume();
      res.on("end", resolve);
    });
    req.on("error", reject);
    req.flushHeaders();
    Promise.resolve()
      .then(() => handler(event, req, context))
      .then(() => {
        if (!req.writableEnded) req.end();
      })
      .catch((e) => {
        req.addTrailers({
          "Lambda-Runtime-Function-Error-Type": (e && e.name) || "Error",
          "Lambda-Runtime-Function-Error-Body": Buffer.from(errorBody(e)).toString("base64"),
        });
        req.end();
      });
  });
}

async function main() {
  const spec = process.argv[2];
  const dot = spec.lastIndexOf(".");
  const mod = require(path.resolve(spec.slice(0, dot)));
  const handler = mod[spec.slice(dot + 1)];
  for (;;) {
    const next = await request("GET", `${BASE}/invocation/next`);
    const id = next.headers["lambda-runtime-aws-request-id"];
    process.env._X_AMZN_TRACE_ID = next.headers["lambda-runtime-trace-id"] || "";
    const context = {
      functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
      functionVersion: process.env.AWS_LAMBDA_FUNCTION_VERSION || "$LATEST",
      awsRequestId: id,
      invokedFunctionArn: next.headers["lambda-runtime-invoked-function-arn"],
      deadlineMs: Number(next.headers["lambda-runtime-deadline-ms"]),
    };
    let event;
    try {
      event = JSON.parse(next.body.toString() || "null");
    } catch (e) {
      await postError(id, e);
      continue;
    }
    if (handler[STREAMING] === "response") {
      await streamResponse(id, handler, event, context);
      continue;
    }
    let result;
    try {
      result = await handler(event, context);
    } catch (e) {
      await postError(id, e);
      continue;
    }
    await request("POST", `${BASE}/invocation/${id}/response`,
      { "Content-Type": "application/json" }, JSON.stringify(result === undefined ? null : result));
  }
}

main().catch((e) => {
  console.error("runtime:", e);
  process.exit(1);
});
