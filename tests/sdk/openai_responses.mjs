// The official `openai` npm package, unmodified, on ragstream's /v1/responses (the OpenAI
// Responses API).
//
//   node openai_responses.mjs <openai|openai4> BASE_URL SCENARIO QUESTION
//
// Scenarios:
//   text       input as a string and as items, not streamed; input as a string, streamed;
//              the SDK's stream helper (responses.stream -> finalResponse)
//   tools      a get_weather round trip: not streamed, sending every item back (stateless);
//              streamed, continuing with previous_response_id
//   ratelimit  one stream (maxRetries 2) while the upstream answers 429 before the first token
//   midstream  one stream that fails after its first tokens
import OpenAI5 from "openai";
import OpenAI4 from "openai4";
import { API_KEY, MODEL, TOOL_RESULT, WEATHER_TOOL, args, describeError, recordingFetch, run, step } from "./common.mjs";

const client_name = process.argv[2];
const { baseURL, scenario, question } = args(1);
const http = [];
const TOOLS = [{ type: "function", ...WEATHER_TOOL }];

function makeClient(maxRetries) {
  if (client_name === "openai") {
    return new OpenAI5({ baseURL, apiKey: API_KEY, maxRetries, fetch: recordingFetch(http) });
  }
  if (client_name === "openai4") return new OpenAI4({ baseURL, apiKey: API_KEY, maxRetries });
  throw new Error(`unknown client ${client_name}`);
}

// The text of a response's output messages (what the SDK's `output_text` is).
function outputText(response) {
  const parts = [];
  for (const item of response?.output ?? []) {
    if (item.type !== "message") continue;
    for (const c of item.content ?? []) if (c.type === "output_text") parts.push(c.text);
  }
  return parts.join("");
}

function summary(response) {
  if (!response) return null;
  return {
    id: response.id,
    object: response.object,
    status: response.status,
    model: response.model,
    error: response.error ?? null,
    incomplete_details: response.incomplete_details ?? null,
    previous_response_id: response.previous_response_id ?? null,
    output_types: (response.output ?? []).map((i) => i.type),
    function_calls: (response.output ?? []).filter((i) => i.type === "function_call")
      .map((i) => ({ id: i.id, call_id: i.call_id, name: i.name, arguments: i.arguments, status: i.status })),
    text: outputText(response),
    sdk_output_text: response.output_text ?? null,
    usage: response.usage ?? null,
    extra: response.x_ragstream ?? null,
  };
}

// Everything a Responses stream said. `events` lists the event types in order, with runs of
// the same type collapsed; an error thrown by the iterator ends it.
async function collect(stream) {
  const out = { events: [], sequence_ok: true, text: "", deltas: 0, args: {}, completed: null, failed: null,
                error_events: [], created: null };
  let last = -1;
  try {
    for await (const ev of stream) {
      if (out.events[out.events.length - 1] !== ev.type) out.events.push(ev.type);
      if (typeof ev.sequence_number === "number") {
        if (ev.sequence_number <= last) out.sequence_ok = false;
        last = ev.sequence_number;
      }
      if (ev.type === "response.created") out.created = summary(ev.response);
      else if (ev.type === "response.output_text.delta") {
        out.text += ev.delta;
        out.deltas += 1;
      } else if (ev.type === "response.output_text.done") out.text_done = ev.text;
      else if (ev.type === "response.function_call_arguments.delta") {
        out.args[ev.item_id] = (out.args[ev.item_id] ?? "") + ev.delta;
      } else if (ev.type === "response.completed") out.completed = summary(ev.response);
      else if (ev.type === "response.failed" || ev.type === "response.incomplete") out.failed = summary(ev.response);
      else if (ev.type === "error") out.error_events.push(ev);
    }
  } catch (e) {
    out.error = describeError(e);
  }
  return out;
}

async function text(client) {
  const out = {};
  out.plain = await step(async () => summary(await client.responses.create({ model: MODEL, input: question })));
  out.items = await step(async () => summary(await client.responses.create({
    model: MODEL,
    input: [{ type: "message", role: "user", content: [{ type: "input_text", text: question }] }],
  })));
  out.stream = await step(async () => collect(await client.responses.create({
    model: MODEL, input: question, stream: true,
  })));
  // The SDK's own accumulator checks the events' indexes against the items it built.
  out.helper = await step(async () => {
    const final = await client.responses.stream({ model: MODEL, input: question }).finalResponse();
    return { ...summary(final), sdk_output_text: final.output_text ?? null };
  });
  return out;
}

async function tools(client) {
  const out = {};
  // Not streamed, stateless: the second request carries the whole exchange as items.
  out.plain = {};
  out.plain.first = await step(async () => {
    const r = await client.responses.create({ model: MODEL, input: question, tools: TOOLS });
    return { ...summary(r), raw_output: r.output };
  });
  const calls = out.plain.first.function_calls ?? [];
  if (calls.length) {
    out.plain.second = await step(async () => summary(await client.responses.create({
      model: MODEL,
      tools: TOOLS,
      input: [
        { role: "user", content: question },
        ...out.plain.first.raw_output,
        ...calls.map((c) => ({ type: "function_call_output", call_id: c.call_id, output: TOOL_RESULT })),
      ],
    })));
  }
  delete out.plain.first.raw_output;
  // Streamed, stateful: the second request names the first with previous_response_id.
  out.stream = {};
  out.stream.first = await step(async () => collect(await client.responses.create({
    model: MODEL, input: question, tools: TOOLS, stream: true,
  })));
  const first = out.stream.first.completed;
  if (first?.function_calls?.length) {
    out.stream.second = await step(async () => collect(await client.responses.create({
      model: MODEL,
      tools: TOOLS,
      previous_response_id: first.id,
      input: first.function_calls.map((c) => ({ type: "function_call_output", call_id: c.call_id, output: TOOL_RESULT })),
      stream: true,
    })));
  }
  return out;
}

async function streamOnce(client) {
  return collect(await client.responses.create({ model: MODEL, input: question, stream: true }));
}

run(async () => {
  const out = { client: client_name, scenario };
  if (scenario === "text") Object.assign(out, await text(makeClient(0)));
  else if (scenario === "tools") Object.assign(out, await tools(makeClient(0)));
  else if (scenario === "ratelimit") out.stream = await step(() => streamOnce(makeClient(2)));
  else if (scenario === "midstream") out.stream = await step(() => streamOnce(makeClient(0)));
  else throw new Error(`unknown scenario ${scenario}`);
  out.http = client_name === "openai" ? http : null;
  return out;
});
