// The official `openai` npm package, unmodified, on ragstream's /v1/chat/completions.
//
//   node openai_chat.mjs <openai|openai4> BASE_URL SCENARIO QUESTION
//
// openai = openai@5 (with a recording fetch, so its retries show), openai4 = openai@4 (its
// own default transport, node-fetch). Scenarios:
//   text       models.list; a plain completion with earlier turns; a stream with usage; the
//              SDK's stream helper (finalChatCompletion); a 400
//   tools      a get_weather round trip, streamed and not, and one driven by the SDK's
//              runTools (streaming)
//   ratelimit  one stream (maxRetries 2) while the upstream answers 429 before the first token
//   midstream  one stream that fails after its first tokens
import OpenAI5 from "openai";
import OpenAI4 from "openai4";
import { API_KEY, MODEL, TOOL_RESULT, WEATHER_TOOL, args, describeError, recordingFetch, run, step } from "./common.mjs";

const client_name = process.argv[2];
const { baseURL, scenario, question } = args(1);
const http = [];

function makeClient(maxRetries) {
  if (client_name === "openai") {
    return new OpenAI5({ baseURL, apiKey: API_KEY, maxRetries, fetch: recordingFetch(http) });
  }
  if (client_name === "openai4") return new OpenAI4({ baseURL, apiKey: API_KEY, maxRetries });
  throw new Error(`unknown client ${client_name}`);
}

// Everything a chat.completion stream said; an error thrown by the iterator ends it.
async function collect(stream) {
  const deltas = [];
  const calls = [];
  const out = { role: null, finish_reason: null, usage: null, extra: null, chunks: 0, ids: new Set() };
  try {
    for await (const chunk of stream) {
      out.chunks += 1;
      out.ids.add(chunk.id);
      out.object = chunk.object;
      if (chunk.usage) out.usage = chunk.usage;
      if (chunk.x_ragstream) out.extra = chunk.x_ragstream;
      for (const choice of chunk.choices ?? []) {
        const d = choice.delta ?? {};
        if (d.role) out.role = d.role;
        if (d.content) deltas.push(d.content);
        for (const tc of d.tool_calls ?? []) {
          const c = (calls[tc.index] ??= { id: null, type: null, name: "", arguments: "" });
          if (tc.id) c.id = tc.id;
          if (tc.type) c.type = tc.type;
          if (tc.function?.name) c.name += tc.function.name;
          if (tc.function?.arguments) c.arguments += tc.function.arguments;
        }
        if (choice.finish_reason) out.finish_reason = choice.finish_reason;
      }
    }
  } catch (e) {
    out.error = describeError(e);
  }
  out.ids = [...out.ids];
  out.text = deltas.join("");
  out.deltas = deltas.length;
  out.tool_calls = calls.filter(Boolean);
  return out;
}

function plainResult(completion) {
  const choice = completion.choices[0];
  return {
    id: completion.id,
    object: completion.object,
    text: choice.message.content,
    role: choice.message.role,
    tool_calls: (choice.message.tool_calls ?? []).map((c) => ({
      id: c.id, type: c.type, name: c.function?.name, arguments: c.function?.arguments,
    })),
    finish_reason: choice.finish_reason,
    usage: completion.usage,
    extra: completion.x_ragstream,
  };
}

async function text(client) {
  const out = {};
  out.models = await step(async () => (await client.models.list()).data.map((m) => m.id));
  out.plain = await step(async () => plainResult(await client.chat.completions.create({
    model: MODEL,
    messages: [
      { role: "system", content: "You are terse." },
      { role: "user", content: "Earlier question?" },
      { role: "assistant", content: "Earlier answer." },
      { role: "user", content: question },
    ],
  })));
  out.stream = await step(async () => collect(await client.chat.completions.create({
    model: MODEL,
    messages: [{ role: "user", content: question }],
    stream: true,
    stream_options: { include_usage: true },
  })));
  // The SDK's own accumulator (openai 4: under beta).
  out.helper = await step(async () => {
    const chat = client_name === "openai4" ? client.beta.chat.completions : client.chat.completions;
    const s = chat.stream({
      model: MODEL,
      messages: [{ role: "user", content: question }],
      stream_options: { include_usage: true },
    });
    return plainResult(await s.finalChatCompletion());
  });
  // An error comes back as the SDK's own error type with the status.
  out.error = await step(async () => {
    await client.chat.completions.create({ model: MODEL, messages: [] });
    return null;
  });
  return out;
}

// ask -> tool call -> the tool's result -> the final answer, with every message sent back.
async function roundTrip(client, stream) {
  const tools = [{ type: "function", function: WEATHER_TOOL }];
  const messages = [{ role: "user", content: question }];
  const ask = async () => {
    const body = { model: MODEL, messages, tools, tool_choice: "auto", parallel_tool_calls: false };
    if (!stream) return plainResult(await client.chat.completions.create(body));
    return collect(await client.chat.completions.create({
      ...body, stream: true, stream_options: { include_usage: true },
    }));
  };
  const out = { first: await step(ask) };
  const calls = out.first.tool_calls ?? [];
  if (out.first.error || calls.length === 0) return out;
  messages.push({
    role: "assistant",
    content: out.first.text || null,
    tool_calls: calls.map((c) => ({ id: c.id, type: "function", function: { name: c.name, arguments: c.arguments } })),
  });
  for (const c of calls) messages.push({ role: "tool", tool_call_id: c.id, content: TOOL_RESULT });
  out.second = await step(ask);
  return out;
}

// The SDK runs the tool itself and sends its result back until the model answers in text.
async function runTools(client) {
  const chat = client_name === "openai4" ? client.beta.chat.completions : client.chat.completions;
  const calls = [];
  const runner = chat.runTools({
    model: MODEL,
    messages: [{ role: "user", content: question }],
    stream: true,
    tools: [{
      type: "function",
      function: {
        ...WEATHER_TOOL,
        parse: JSON.parse,
        function: async (input) => {
          calls.push(input);
          return TOOL_RESULT;
        },
      },
    }],
  });
  const final = await runner.finalChatCompletion();
  return {
    calls,
    final: plainResult(final),
    roles: runner.messages.map((m) => m.role),
  };
}

async function streamOnce(client) {
  return collect(await client.chat.completions.create({
    model: MODEL,
    messages: [{ role: "user", content: question }],
    stream: true,
    stream_options: { include_usage: true },
  }));
}

run(async () => {
  const out = { client: client_name, scenario };
  if (scenario === "text") Object.assign(out, await text(makeClient(0)));
  else if (scenario === "tools") {
    const client = makeClient(0);
    out.stream = await roundTrip(client, true);
    out.plain = await roundTrip(client, false);
    out.runTools = await step(() => runTools(client));
  } else if (scenario === "ratelimit") out.stream = await step(() => streamOnce(makeClient(2)));
  else if (scenario === "midstream") out.stream = await step(() => streamOnce(makeClient(0)));
  else throw new Error(`unknown scenario ${scenario}`);
  out.http = client_name === "openai" ? http : null;
  return out;
});
