// The Vercel AI SDK (`ai` + `@ai-sdk/openai`), unmodified, on ragstream's /v1.
//
//   node ai_sdk.mjs <responses|chat> BASE_URL SCENARIO QUESTION
//
// responses = the provider's default model, `openai('model')`, which speaks the Responses
// API (/v1/responses); chat = `openai.chat('model')` (/v1/chat/completions). Scenarios:
//   text       generateText and streamText
//   tools      generateText and streamText with an executed get_weather tool (two steps)
//   ratelimit  streamText (maxRetries 2) while the upstream answers 429 before the first token
//   midstream  streamText of an answer that fails after its first tokens
import { createOpenAI } from "@ai-sdk/openai";
import { generateText, stepCountIs, streamText, tool } from "ai";
import { z } from "zod";
import { API_KEY, MODEL, TOOL_RESULT, WEATHER_TOOL, args, describeError, recordingFetch, run, step } from "./common.mjs";

const flavour = process.argv[2];
const { baseURL, scenario, question } = args(1);
const http = [];
const provider = createOpenAI({ baseURL, apiKey: API_KEY, fetch: recordingFetch(http) });
const model = flavour === "responses" ? provider(MODEL) : flavour === "chat" ? provider.chat(MODEL) : null;
if (!model) throw new Error(`unknown flavour ${flavour}`);

const toolInputs = [];
const tools = {
  [WEATHER_TOOL.name]: tool({
    description: WEATHER_TOOL.description,
    inputSchema: z.object({ city: z.string().describe("The city") }),
    execute: async (input) => {
      toolInputs.push(input);
      return TOOL_RESULT;
    },
  }),
};

function stepSummary(s) {
  return {
    finishReason: s.finishReason,
    text: s.text,
    toolCalls: (s.toolCalls ?? []).map((c) => ({ toolCallId: c.toolCallId, toolName: c.toolName, input: c.input })),
    toolResults: (s.toolResults ?? []).map((r) => ({ toolCallId: r.toolCallId, toolName: r.toolName, output: r.output })),
    usage: s.usage,
  };
}

async function generate(extra = {}) {
  const r = await generateText({ model, prompt: question, maxRetries: 0, ...extra });
  return {
    text: r.text,
    finishReason: r.finishReason,
    usage: r.usage,
    totalUsage: r.totalUsage,
    steps: r.steps.map(stepSummary),
    warnings: r.warnings ?? [],
  };
}

// Everything streamText's fullStream said: the text deltas, the error parts, the finish.
async function stream(extra = {}) {
  const out = { text: "", deltas: 0, parts: [], errors: [], onError: [] };
  const r = streamText({
    model,
    prompt: question,
    maxRetries: 0,
    onError: ({ error }) => out.onError.push(describeError(error)),
    ...extra,
  });
  try {
    for await (const part of r.fullStream) {
      if (out.parts[out.parts.length - 1] !== part.type) out.parts.push(part.type);
      if (part.type === "text-delta") {
        out.text += part.text;
        out.deltas += 1;
      } else if (part.type === "error") out.errors.push(describeError(part.error));
      else if (part.type === "finish") {
        out.finishReason = part.finishReason;
        out.totalUsage = part.totalUsage;
      }
    }
  } catch (e) {
    out.thrown = describeError(e);
  }
  for (const [k, p] of [["usage", r.usage], ["finishReasonPromise", r.finishReason], ["steps", r.steps]]) {
    try {
      const v = await p;
      out[k] = k === "steps" ? v.map(stepSummary) : v;
    } catch (e) {
      out[`${k}Error`] = describeError(e);
    }
  }
  return out;
}

run(async () => {
  const out = { flavour, scenario };
  if (scenario === "text") {
    out.generate = await step(() => generate());
    out.stream = await step(() => stream());
  } else if (scenario === "tools") {
    const withTools = { tools, stopWhen: stepCountIs(3) };
    out.generate = await step(() => generate(withTools));
    out.stream = await step(() => stream(withTools));
    out.toolInputs = toolInputs;
  } else if (scenario === "ratelimit") out.stream = await step(() => stream({ maxRetries: 2 }));
  else if (scenario === "midstream") out.stream = await step(() => stream());
  else throw new Error(`unknown scenario ${scenario}`);
  out.http = http;
  return out;
});
