// Shared by the client scripts of the SDK matrix (tests/integration/test_sdk_matrix.py).
// Each script prints exactly one JSON line on stdout: what the client saw. The Python test
// makes every assertion; a script only reports (errors included), so a failing check shows
// the client's own view of what went wrong.

export const API_KEY = "sk-sdk-test-not-a-real-key";
export const MODEL = "fake-model";

// The tool every client binds, and what the client's "tool" answers.
export const WEATHER_TOOL = {
  name: "get_weather",
  description: "The current weather in a city",
  parameters: {
    type: "object",
    properties: { city: { type: "string", description: "The city" } },
    required: ["city"],
    additionalProperties: false,
  },
};
export const TOOL_RESULT = '{"temp_c": 21}';

// argv: <BASE_URL> <scenario> <question> [JSON options], after any leading client choice.
export function args(skip = 0) {
  const a = process.argv.slice(2 + skip);
  return {
    baseURL: a[0],
    scenario: a[1],
    question: a[2] ?? "",
    opts: a[3] ? JSON.parse(a[3]) : {},
  };
}

// What the test can use of any error an SDK throws or reports.
export function describeError(e) {
  if (e == null) return null;
  if (typeof e !== "object") return { name: typeof e, message: String(e) };
  const out = {
    name: e.constructor?.name ?? e.name ?? "Error",
    message: String(e.message ?? "").slice(0, 500),
  };
  for (const k of ["status", "statusCode", "code", "type", "param"]) {
    if (e[k] !== undefined && e[k] !== null) out[k] = e[k];
  }
  if (e.error && typeof e.error === "object") out.error = e.error;
  if (e.responseBody) out.responseBody = String(e.responseBody).slice(0, 500);
  if (e.lastError) out.lastError = describeError(e.lastError);
  if (e.cause && e.cause !== e && typeof e.cause === "object") out.cause = describeError(e.cause);
  return out;
}

// A fetch that records every request's method, path and response status; clients that take
// a `fetch` option get this one, so the test sees the SDK's own retries.
export function recordingFetch(log, base = globalThis.fetch) {
  return async (input, init) => {
    const url = typeof input === "string" ? input : input.url ?? String(input);
    const entry = { method: init?.method ?? input?.method ?? "GET", path: new URL(url).pathname };
    log.push(entry);
    try {
      const res = await base(input, init);
      entry.status = res.status;
      return res;
    } catch (e) {
      entry.error = String(e?.message ?? e);
      throw e;
    }
  };
}

// Runs `main` with a deadline and prints its result (or the fatal error) as one JSON line.
export async function run(main, timeoutMs = 60000) {
  const timer = setTimeout(() => {
    console.log(JSON.stringify({ fatal: { name: "Timeout", message: `no result within ${timeoutMs} ms` } }));
    process.exit(3);
  }, timeoutMs);
  try {
    const out = await main();
    console.log(JSON.stringify(out));
    clearTimeout(timer);
    process.exit(0);
  } catch (e) {
    console.log(JSON.stringify({ fatal: describeError(e), stack: String(e?.stack ?? "").slice(0, 2000) }));
    clearTimeout(timer);
    process.exit(1);
  }
}

// Runs one step of a scenario: its result, or {error} when it throws, so that one failing
// step does not hide the others.
export async function step(fn) {
  try {
    return await fn();
  } catch (e) {
    return { error: describeError(e) };
  }
}
