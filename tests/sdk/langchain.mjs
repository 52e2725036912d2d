// LangChain.js (`@langchain/openai` ChatOpenAI), unmodified, on ragstream's
// /v1/chat/completions, always with a get_weather tool bound (bindTools).
//
//   node langchain.mjs BASE_URL SCENARIO QUESTION
//
// Scenarios:
//   text       invoke and stream (chunks concatenated) of a question that needs no tool
//   tools      the get_weather round trip with invoke, then with stream
//   ratelimit  stream (maxRetries 2) while the upstream answers 429 before the first token
//   midstream  stream of an answer that fails after its first tokens
import { HumanMessage } from "@langchain/core/messages";
import { tool } from "@langchain/core/tools";
import { ChatOpenAI } from "@langchain/openai";
import { z } from "zod";
import { API_KEY, MODEL, TOOL_RESULT, WEATHER_TOOL, args, describeError, recordingFetch, run, step } from "./common.mjs";

const { baseURL, scenario, question } = args(0);
const http = [];

const getWeather = tool(async () => TOOL_RESULT, {
  name: WEATHER_TOOL.name,
  description: WEATHER_TOOL.description,
  schema: z.object({ city: z.string().describe("The city") }),
});

function makeModel(maxRetries) {
  const model = new ChatOpenAI({
    model: MODEL,
    apiKey: API_KEY,
    maxRetries,
    configuration: { baseURL, fetch: recordingFetch(http) },
  });
  return model.bindTools([getWeather]);
}

function messageSummary(m) {
  return {
    type: m._getType?.() ?? m.type,
    content: m.content,
    tool_calls: (m.tool_calls ?? []).map((c) => ({ id: c.id, name: c.name, args: c.args })),
    invalid_tool_calls: m.invalid_tool_calls ?? [],
    usage_metadata: m.usage_metadata ?? null,
    finish_reason: m.response_metadata?.finish_reason ?? null,
  };
}

async function invoke(model, messages) {
  const m = await model.invoke(messages);
  return { message: m, summary: messageSummary(m) };
}

// The chunks of a stream, concatenated as LangChain documents; an error ends it.
async function stream(model, messages) {
  const out = { chunks: 0, text: "" };
  let full = null;
  try {
    for await (const chunk of await model.stream(messages)) {
      out.chunks += 1;
      if (typeof chunk.content === "string") out.text += chunk.content;
      full = full === null ? chunk : full.concat(chunk);
    }
  } catch (e) {
    out.error = describeError(e);
  }
  return { message: full, summary: full ? { ...messageSummary(full), ...out } : out };
}

// ask -> tool call -> run the tool -> the final answer.
async function roundTrip(model, how) {
  const human = new HumanMessage(question);
  const out = {};
  const first = await step(() => how(model, [human]));
  out.first = first.summary ?? first;
  const calls = first.message?.tool_calls ?? [];
  if (!calls.length) return out;
  const toolMessages = [];
  for (const call of calls) toolMessages.push(await getWeather.invoke(call));
  out.tool_messages = toolMessages.map((t) => ({ tool_call_id: t.tool_call_id, content: t.content }));
  const second = await step(() => how(model, [human, first.message, ...toolMessages]));
  out.second = second.summary ?? second;
  return out;
}

run(async () => {
  const out = { scenario };
  const q = [new HumanMessage(question)];
  if (scenario === "text") {
    const model = makeModel(0);
    out.invoke = await step(async () => (await invoke(model, q)).summary);
    out.stream = await step(async () => (await stream(model, q)).summary);
  } else if (scenario === "tools") {
    const model = makeModel(0);
    out.invoke = await roundTrip(model, invoke);
    out.stream = await roundTrip(model, stream);
  } else if (scenario === "ratelimit") out.stream = await step(async () => (await stream(makeModel(2), q)).summary);
  else if (scenario === "midstream") out.stream = await step(async () => (await stream(makeModel(0), q)).summary);
  else throw new Error(`unknown scenario ${scenario}`);
  out.http = http;
  return out;
});
