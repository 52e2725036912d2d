// SSE client libraries on ragstream's native API (/api/chat/...), unmodified.
//
//   node native_sse.mjs <fetch-event-source|eventsource> BASE_URL SCENARIO QUESTION '{"resume_after": K}'
//
// fetch-event-source (@microsoft/fetch-event-source, POST-capable; needs browser globals:
// `window` for fetch/setTimeout and `document` for its visibility handling, shimmed below):
//   post_replay  POST the message (with a client_message_id, on_disconnect "finish"); the
//                connection drops after event K; the library retries the same POST with
//                Last-Event-ID; when the stream ends after the done event, the app asks for a
//                reconnect, which must be 204 (no more events) so that it stops.
//   get_resume   POST the message to its end; then GET the answer's stream with Last-Event-ID K;
//                reconnect after the done event: 204.
// eventsource (the WHATWG EventSource for Node, GET only):
//   get_resume   POST the message with fetch and drop it after event K (on_disconnect "finish");
//                then two EventSources follow the answer: one with ?last_event_id=K (what a
//                browser can do), one with a Last-Event-ID header set by its `fetch` option.
//                Each reconnects by itself after the done event, sending Last-Event-ID, and
//                must get 204 and stop (readyState CLOSED).
//
// Each connection is listed in `requests` (method, path, query, Last-Event-ID sent, status).
import { fetchEventSource } from "@microsoft/fetch-event-source";
import { EventSource } from "eventsource";
import { args, describeError, run } from "./common.mjs";

// fetch-event-source reads window.fetch, window.setTimeout and document.*EventListener.
globalThis.window ??= globalThis;
globalThis.document ??= { hidden: false, addEventListener() {}, removeEventListener() {} };

const clientName = process.argv[2];
const { baseURL, scenario, question, opts } = args(1);
const K = Number(opts.resume_after ?? 1);
const requests = [];

const urlOf = (input) => new URL(typeof input === "string" || input instanceof URL ? input : input.url);

function headerOf(headers, name) {
  if (!headers) return null;
  if (typeof headers.get === "function") return headers.get(name);
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === name.toLowerCase()) return v;
  return null;
}

// A fetch that records each connection and can drop it (abort) from outside, the way a
// network failure ends a stream under the library.
function droppableFetch() {
  const f = async (input, init = {}) => {
    const url = urlOf(input);
    const ctrl = new AbortController();
    init.signal?.addEventListener("abort", () => ctrl.abort());
    const entry = {
      method: init.method ?? "GET",
      path: url.pathname,
      query: url.search,
      last_event_id: headerOf(init.headers, "last-event-id"),
    };
    requests.push(entry);
    f.drop = () => ctrl.abort(new Error("simulated network drop"));
    const res = await fetch(input, { ...init, signal: ctrl.signal });
    entry.status = res.status;
    entry.content_type = res.headers.get("content-type");
    return res;
  };
  return f;
}

class Stop extends Error {}
class Reconnect extends Error {}

// One fetchEventSource run: events are recorded; `onEvent(ev, connection)` may drop the
// connection; a normal end after the done event asks once for a reconnect; 204 stops.
async function fesRun(url, init, onEvent = () => {}) {
  const out = { events: [], errors: [], closes: 0, reconnected_after_done: false };
  const f = droppableFetch();
  let connection = 0;
  const sawDone = () => out.events.some((e) => e.json?.done === true);
  try {
    await fetchEventSource(url, {
      ...init,
      fetch: f,
      openWhenHidden: true,
      async onopen(res) {
        connection += 1;
        if (res.status === 204) throw new Stop("204");
        const ct = res.headers.get("content-type") ?? "";
        if (res.status !== 200 || !ct.startsWith("text/event-stream")) {
          throw new Error(`HTTP ${res.status} ${ct}: ${(await res.text()).slice(0, 300)}`);
        }
      },
      onmessage(ev) {
        // The library dispatches every blank line, even after a block with no data (the
        // stream's opening `retry:` hint): those are not events (WHATWG: not dispatched).
        if (ev.data === "") {
          out.empty_dispatches = (out.empty_dispatches ?? 0) + 1;
          return;
        }
        let json = null;
        try {
          json = JSON.parse(ev.data);
        } catch {}
        out.events.push({ id: ev.id, event: ev.event || "message", json, connection });
        onEvent(ev, connection, f);
      },
      onclose() {
        out.closes += 1;
        if (sawDone() && !out.reconnected_after_done) {
          out.reconnected_after_done = true;
          throw new Reconnect("reconnect after the done event");
        }
      },
      onerror(err) {
        if (err instanceof Stop) throw err;
        out.errors.push(describeError(err));
        if (out.errors.length > 5) throw err; // a loop: give up
        return 0; // retry at once
      },
    });
    out.ended = "resolved";
  } catch (e) {
    out.ended = e instanceof Stop ? "stopped_by_204" : "rejected";
    if (!(e instanceof Stop)) out.fatal = describeError(e);
  }
  return out;
}

const postInit = (body) => ({
  method: "POST",
  headers: { "Content-Type": "application/json" },
  body: JSON.stringify(body),
});

async function fesPostReplay() {
  const body = { message: question, client_message_id: opts.client_message_id, on_disconnect: "finish" };
  let dropped = false;
  const out = await fesRun(`${baseURL}/api/chat/message/stream`, postInit(body), (ev, connection, f) => {
    if (!dropped && connection === 1 && Number(ev.id) === K) {
      dropped = true;
      f.drop();
    }
  });
  out.dropped_after = dropped ? K : null;
  return out;
}

// The whole stream of a new message (to learn its ids), read with fetchEventSource.
async function fesPostAll(body) {
  const events = [];
  await fetchEventSource(`${baseURL}/api/chat/message/stream`, {
    ...postInit(body),
    openWhenHidden: true,
    onmessage(ev) {
      if (ev.data !== "") events.push({ id: ev.id, json: JSON.parse(ev.data) });
    },
    onerror(err) {
      throw err;
    },
  });
  return events;
}

async function fesGetResume() {
  const original = await fesPostAll({ message: question });
  const msg = original[0].json.message_id;
  // Lower case, as the library itself names the header: it overwrites it on reconnects
  // (a "Last-Event-ID" key here would be sent as well, joined to the library's value).
  const out = await fesRun(`${baseURL}/api/chat/messages/${msg}/stream`, {
    method: "GET",
    headers: { "last-event-id": String(K) },
  });
  out.original = original;
  return out;
}

// Reads a native stream with fetch until event `k`, then drops the connection.
async function postAndDrop(body, k) {
  const ctrl = new AbortController();
  const res = await fetch(`${baseURL}/api/chat/message/stream`, { ...postInit(body), signal: ctrl.signal });
  const out = { status: res.status, events: [] };
  const decoder = new TextDecoder();
  let buf = "";
  try {
    for await (const chunk of res.body) {
      buf += decoder.decode(chunk, { stream: true });
      let i;
      while ((i = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        let id = null;
        const data = [];
        for (const line of block.split("\n")) {
          if (line.startsWith("id:")) id = line.slice(3).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
        }
        if (!data.length) continue;
        out.events.push({ id, json: JSON.parse(data.join("\n")) });
        if (Number(id) === k) {
          ctrl.abort();
          return out;
        }
      }
    }
  } catch (e) {
    if (!ctrl.signal.aborted) throw e;
  }
  return out;
}

// One EventSource following an answer until the server's 204 closes it for good.
function esFollow(url, extraHeader) {
  return new Promise((resolve) => {
    const out = { events: [], errors: [], opens: 0 };
    const first = { pending: extraHeader != null };
    const es = new EventSource(url, {
      fetch: async (input, init) => {
        const headers = { ...(init.headers ?? {}) };
        if (first.pending) {
          first.pending = false;
          if (!headerOf(headers, "last-event-id")) headers["Last-Event-ID"] = extraHeader;
        }
        const u = urlOf(input);
        const entry = { method: init.method ?? "GET", path: u.pathname, query: u.search,
                        last_event_id: headerOf(headers, "last-event-id"), follower: url.includes("?") ? "query" : "header" };
        requests.push(entry);
        const res = await fetch(input, { ...init, headers });
        entry.status = res.status;
        entry.content_type = res.headers.get("content-type");
        return res;
      },
    });
    const timer = setTimeout(() => {
      out.ended = "timeout";
      out.readyState = es.readyState;
      es.close();
      resolve(out);
    }, 20000);
    es.onopen = () => (out.opens += 1);
    es.onmessage = (ev) => {
      let json = null;
      try {
        json = JSON.parse(ev.data);
      } catch {}
      out.events.push({ id: ev.lastEventId, json });
    };
    es.onerror = (ev) => {
      out.errors.push({ code: ev.code ?? null, message: ev.message ?? null, readyState: es.readyState });
      if (es.readyState === es.CLOSED) {
        clearTimeout(timer);
        out.ended = "closed";
        out.readyState = es.readyState;
        resolve(out);
      }
    };
  });
}

async function esGetResume() {
  const body = { message: question, on_disconnect: "finish" };
  const post = await postAndDrop(body, K);
  const msg = post.events[0].json.message_id;
  const url = `${baseURL}/api/chat/messages/${msg}/stream`;
  const [query, header] = await Promise.all([
    esFollow(`${url}?last_event_id=${K}`, null),
    esFollow(url, String(K)),
  ]);
  return { post, query, header };
}

run(async () => {
  const out = { client: clientName, scenario, resume_after: K };
  if (clientName === "fetch-event-source" && scenario === "post_replay") Object.assign(out, await fesPostReplay());
  else if (clientName === "fetch-event-source" && scenario === "get_resume") Object.assign(out, await fesGetResume());
  else if (clientName === "eventsource" && scenario === "get_resume") Object.assign(out, await esGetResume());
  else throw new Error(`unknown client/scenario ${clientName} ${scenario}`);
  out.requests = requests;
  return out;
}, 45000);
