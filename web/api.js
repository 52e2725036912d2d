// The ragstream HTTP API as the page uses it. Every call sends the optional API key (kept in
// localStorage) as `Authorization: Bearer ...`; errors become ApiError with the server's
// {"error": {"code", "message"}} when there is one.

const API_KEY_STORAGE = 'ragstream.apiKey';

export function getApiKey() {
  try {
    return localStorage.getItem(API_KEY_STORAGE) || '';
  } catch {
    return ''; // storage disabled
  }
}

export function setApiKey(key) {
  try {
    if (key) localStorage.setItem(API_KEY_STORAGE, key);
    else localStorage.removeItem(API_KEY_STORAGE);
    return true;
  } catch {
    return false;
  }
}

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

/** A network failure (server unreachable, connection refused or reset). */
export class NetworkError extends Error {
  constructor(cause) {
    super('Could not reach the server. Check that ragstream is running and try again.');
    this.name = 'NetworkError';
    this.cause = cause;
  }
}

function headers(extra = {}) {
  const h = { Accept: 'application/json', ...extra };
  const key = getApiKey();
  if (key) h.Authorization = `Bearer ${key}`;
  return h;
}

/** Builds an ApiError from a failed response (JSON error body, or the status line). */
export async function errorFromResponse(res) {
  let code = `http_${res.status}`;
  let message = `The server answered ${res.status}${res.statusText ? ` ${res.statusText}` : ''}.`;
  try {
    const text = await res.text();
    const body = JSON.parse(text);
    if (body && body.error) {
      if (typeof body.error.code === 'string') code = body.error.code;
      if (typeof body.error.message === 'string' && body.error.message) message = body.error.message;
    }
  } catch {
    // not JSON (e.g. a proxy's HTML page): keep the status line
  }
  if (res.status === 401) message += ' Set an API key under "API key".';
  return new ApiError(res.status, code, message);
}

async function send(path, { method = 'GET', body, contentType, accept, signal } = {}) {
  const extra = {};
  if (contentType) extra['Content-Type'] = contentType;
  if (accept) extra.Accept = accept;
  const init = { method, headers: headers(extra), signal, cache: 'no-store' };
  if (body !== undefined) init.body = body;
  let res;
  try {
    res = await fetch(path, init);
  } catch (err) {
    if (err && err.name === 'AbortError') throw err;
    throw new NetworkError(err);
  }
  if (!res.ok) throw await errorFromResponse(res);
  return res;
}

async function json(path, options) {
  const res = await send(path, options);
  return res.json();
}

export function listConversations(cursor) {
  const q = new URLSearchParams({ limit: '30' });
  if (cursor) q.set('cursor', cursor);
  return json(`/api/conversations?${q}`);
}

export function getConversation(id) {
  return json(`/api/conversations/${encodeURIComponent(id)}`);
}

export function deleteConversation(id) {
  return json(`/api/conversations/${encodeURIComponent(id)}`, { method: 'DELETE' });
}

export function listDocuments() {
  return json('/api/documents');
}

export function deleteDocument(id) {
  return json(`/api/documents/${encodeURIComponent(id)}`, { method: 'DELETE' });
}

/** Uploads text as a document: a raw text/markdown or text/plain body with ?title=. */
export function uploadDocument(title, text, markdown) {
  const type = markdown ? 'text/markdown; charset=utf-8' : 'text/plain; charset=utf-8';
  return json(`/api/documents?title=${encodeURIComponent(title)}`, {
    method: 'POST',
    body: text,
    contentType: type,
  });
}

/**
 * Starts a streamed answer; resolves to the response (status 2xx, body an event stream).
 * Rejects with ApiError (HTTP error), NetworkError, or an AbortError.
 */
export function streamMessage(body, signal) {
  return send('/api/chat/message/stream', {
    method: 'POST',
    body: JSON.stringify(body),
    contentType: 'application/json',
    accept: 'text/event-stream',
    signal,
  });
}
