// The official `openai` npm package, unmodified, against ragstream's OpenAI-compatible API
// through nginx: one non-streaming and one streaming completion. Prints one JSON object with
// what it saw; the Python test (tests/integration/test_openai_sdk.py) checks it.
//
//   node sdk_check.mjs BASE_URL QUESTION [CONVERSATION_QUESTION]
import OpenAI from "openai";

const [baseURL, question] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey: "sk-sdk-test-not-a-real-key", maxRetries: 0 });
const out = {};

const models = await client.models.list();
out.models = models.data.map((m) => m.id);

const completion = await client.chat.completions.create({
  model: out.models[0],
  messages: [
    { role: "system", content: "You are terse." },
    { role: "user", content: "Earlier question?" },
    { role: "assistant", content: "Earlier answer." },
    { role: "user", content: question },
  ],
});
out.plain = {
  id: completion.id,
  object: completion.object,
  text: completion.choices[0].message.content,
  role: completion.choices[0].message.role,
  finish_reason: completion.choices[0].finish_reason,
  usage: completion.usage,
  extra: completion.x_ragstream,
};

const stream = await client.chat.completions.create({
  model: out.models[0],
  messages: [{ role: "user", content: question }],
  stream: true,
  stream_options: { include_usage: true },
});
const deltas = [];
let finish = null, usage = null, extra = null, chunks = 0;
for await (const chunk of stream) {
  chunks += 1;
  if (chunk.usage) usage = chunk.usage;
  if (chunk.x_ragstream) extra = chunk.x_ragstream;
  for (const choice of chunk.choices) {
    if (choice.delta?.content) deltas.push(choice.delta.content);
    if (choice.finish_reason) finish = choice.finish_reason;
  }
}
out.stream = { text: deltas.join(""), deltas: deltas.length, chunks, finish_reason: finish, usage, extra };

// An error comes back as the SDK's own error type with the status.
try {
  await client.chat.completions.create({ model: out.models[0], messages: [] });
  out.error = null;
} catch (e) {
  out.error = { status: e.status, type: e.type ?? e.error?.type, name: e.constructor.name };
}
console.log(JSON.stringify(out));
