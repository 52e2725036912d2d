// The ragstream chat page: conversations, the streamed answer, documents, the API key.
// Plain ES modules, no build step, no external resources.

import * as api from './api.js';
import { readEventStream } from './sse.js';
import { AssistantView, userMessage } from './messages.js';
import { formatBytes, relativeTime } from './text.js';

const $ = (id) => document.getElementById(id);

const ui = {
  app: $('app'),
  sidebar: $('sidebar'),
  toggleSidebar: $('toggle-conversations'),
  toggleDocuments: $('toggle-documents'),
  closeDocuments: $('close-documents'),
  closeSidebar: $('close-sidebar'),
  scrim: $('scrim'),
  title: $('conversation-title'),
  newChat: $('new-chat'),
  conversationList: $('conversation-list'),
  moreConversations: $('more-conversations'),
  conversationsStatus: $('conversations-status'),
  messages: $('messages'),
  emptyState: $('empty-state'),
  composer: $('composer'),
  input: $('message-input'),
  send: $('send-button'),
  stop: $('stop-button'),
  documentsPanel: $('documents-panel'),
  fileInput: $('file-input'),
  uploadStatus: $('upload-status'),
  documentList: $('document-list'),
  documentsCount: $('documents-count'),
  apiKeyForm: $('api-key-form'),
  apiKey: $('api-key'),
  apiKeyClear: $('api-key-clear'),
  apiKeyStatus: $('api-key-status'),
};

const state = {
  conversationId: null,
  stream: null, // { controller, view }
  nextCursor: null,
  openToken: 0, // drops the result of an outdated conversation load
};

const narrow = window.matchMedia('(max-width: 760px)');
const MAX_UPLOAD_BYTES = 8 * 1024 * 1024; // nginx's client_max_body_size

// ---------------------------------------------------------------- layout: sidebar, panels

function setSidebarOpen(open, { focus = true } = {}) {
  const wasOpen = ui.app.classList.contains('sidebar-open');
  ui.app.classList.toggle('sidebar-open', open);
  ui.toggleSidebar.setAttribute('aria-expanded', String(open));
  updateScrim();
  if (!focus) return;
  if (open) {
    ui.newChat.focus();
  } else if (wasOpen && narrow.matches) {
    ui.toggleSidebar.focus();
  }
}

function setDocumentsOpen(open, { focus = true } = {}) {
  ui.documentsPanel.hidden = !open;
  ui.app.classList.toggle('documents-open', open);
  ui.toggleDocuments.setAttribute('aria-expanded', String(open));
  updateScrim();
  if (open) {
    refreshDocuments();
    if (focus) $('documents-heading').focus();
  } else if (focus) {
    ui.toggleDocuments.focus();
  }
}

function updateScrim() {
  const overlay =
    (narrow.matches && ui.app.classList.contains('sidebar-open')) ||
    (window.matchMedia('(max-width: 1100px)').matches && !ui.documentsPanel.hidden);
  ui.scrim.hidden = !overlay;
}

ui.toggleSidebar.addEventListener('click', () => {
  setSidebarOpen(!ui.app.classList.contains('sidebar-open'));
});
ui.closeSidebar.addEventListener('click', () => setSidebarOpen(false));
ui.toggleDocuments.addEventListener('click', () => setDocumentsOpen(ui.documentsPanel.hidden));
ui.closeDocuments.addEventListener('click', () => setDocumentsOpen(false));
ui.scrim.addEventListener('click', () => {
  if (!ui.documentsPanel.hidden) setDocumentsOpen(false, { focus: false });
  setSidebarOpen(false, { focus: false });
});
document.addEventListener('keydown', (event) => {
  if (event.key !== 'Escape' || event.defaultPrevented) return;
  if (!ui.documentsPanel.hidden && window.matchMedia('(max-width: 1100px)').matches) {
    setDocumentsOpen(false);
  } else if (narrow.matches && ui.app.classList.contains('sidebar-open')) {
    setSidebarOpen(false);
  }
});
narrow.addEventListener('change', () => {
  if (!narrow.matches) setSidebarOpen(false, { focus: false });
  updateScrim();
});

// ---------------------------------------------------------------- messages view helpers

function isNearBottom() {
  const m = ui.messages;
  return m.scrollHeight - m.scrollTop - m.clientHeight < 96;
}

function scrollToBottom() {
  ui.messages.scrollTop = ui.messages.scrollHeight;
}

function clearMessages() {
  for (const node of [...ui.messages.children]) {
    if (node !== ui.emptyState) node.remove();
  }
}

function showEmptyState(show) {
  ui.emptyState.hidden = !show;
}

function addToLog(node) {
  const stick = isNearBottom();
  showEmptyState(false);
  ui.messages.append(node);
  if (stick) scrollToBottom();
}

function notice(text, kind = 'info') {
  const p = document.createElement('p');
  p.className = `log-notice notice-${kind}`;
  p.textContent = text;
  addToLog(p);
  return p;
}

function setTitle(title) {
  ui.title.textContent = title || 'New chat';
  ui.title.dir = 'auto';
  document.title = title ? `${title} · ragstream` : 'ragstream';
}

function setStreamingUi(streaming) {
  ui.send.disabled = streaming;
  ui.stop.hidden = !streaming;
  ui.composer.classList.toggle('is-streaming', streaming);
  if (!streaming && document.activeElement === ui.stop) ui.input.focus();
}

// ---------------------------------------------------------------- conversations

function conversationHash(id) {
  return `#/c/${encodeURIComponent(id)}`;
}

function idFromHash() {
  const m = /^#\/c\/([^/?#]+)$/.exec(window.location.hash);
  return m ? decodeURIComponent(m[1]) : null;
}

function markCurrentConversation() {
  for (const link of ui.conversationList.querySelectorAll('a')) {
    if (link.dataset.id === state.conversationId) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
}

function conversationItem(c) {
  const li = document.createElement('li');
  const a = document.createElement('a');
  a.className = 'conv-link';
  a.href = conversationHash(c.id);
  a.dataset.id = c.id;
  const title = document.createElement('span');
  title.className = 'conv-title';
  title.dir = 'auto';
  title.textContent = c.title || 'Untitled conversation';
  const meta = document.createElement('span');
  meta.className = 'conv-meta';
  const count = c.message_count === 1 ? '1 message' : `${c.message_count ?? 0} messages`;
  meta.textContent = `${relativeTime(c.updated_at)} · ${count}`;
  const time = new Date(c.updated_at);
  if (!Number.isNaN(time.getTime())) meta.title = time.toLocaleString();
  a.append(title, meta);
  a.addEventListener('click', (event) => {
    if (event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
    event.preventDefault();
    openConversation(c.id, { updateHash: true });
    if (narrow.matches) setSidebarOpen(false);
  });
  li.append(a);
  return li;
}

async function refreshConversations({ append = false } = {}) {
  try {
    const page = await api.listConversations(append ? state.nextCursor : null);
    const items = (page.conversations || []).map(conversationItem);
    if (append) ui.conversationList.append(...items);
    else ui.conversationList.replaceChildren(...items);
    state.nextCursor = page.next_cursor || null;
    ui.moreConversations.hidden = !state.nextCursor;
    const none = ui.conversationList.children.length === 0;
    ui.conversationsStatus.textContent = none ? 'No conversations yet.' : '';
    markCurrentConversation();
  } catch (err) {
    ui.conversationsStatus.textContent = `Could not load conversations: ${err.message}`;
  }
}

ui.moreConversations.addEventListener('click', () => refreshConversations({ append: true }));

function stopStreaming() {
  if (state.stream) state.stream.controller.abort();
}

async function openConversation(id, { updateHash = false } = {}) {
  stopStreaming();
  const token = ++state.openToken;
  state.conversationId = id;
  if (updateHash && window.location.hash !== conversationHash(id)) {
    history.pushState(null, '', conversationHash(id));
  }
  markCurrentConversation();
  clearMessages();
  showEmptyState(false);
  setTitle('');
  const loading = notice('Loading the conversation…', 'muted');
  try {
    const conv = await api.getConversation(id);
    if (token !== state.openToken) return;
    loading.remove();
    setTitle(conv.title);
    for (const m of conv.messages || []) {
      if (m.role === 'user') {
        ui.messages.append(userMessage(m.content || '', m.language));
      } else if (m.role === 'assistant') {
        const view = AssistantView.fromStored(m);
        view.setIds(conv.id, m.id);
        ui.messages.append(view.article);
      }
    }
    if (!conv.messages || conv.messages.length === 0) showEmptyState(true);
    scrollToBottom();
  } catch (err) {
    if (token !== state.openToken) return;
    loading.remove();
    if (err instanceof api.ApiError && err.status === 404) {
      notice('This conversation no longer exists. Start a new chat.', 'error');
      state.conversationId = null;
      history.replaceState(null, '', window.location.pathname + window.location.search);
    } else {
      notice(`Could not load the conversation: ${err.message}`, 'error');
    }
  }
}

function newChat() {
  stopStreaming();
  state.openToken++;
  state.conversationId = null;
  if (window.location.hash) history.pushState(null, '', window.location.pathname + window.location.search);
  clearMessages();
  showEmptyState(true);
  setTitle('');
  markCurrentConversation();
  if (narrow.matches) setSidebarOpen(false, { focus: false });
  ui.input.focus();
}

ui.newChat.addEventListener('click', newChat);

window.addEventListener('popstate', () => {
  const id = idFromHash();
  if (id && id !== state.conversationId) openConversation(id);
  else if (!id && state.conversationId) newChat();
});

// ---------------------------------------------------------------- sending and streaming

async function sendMessage(text) {
  if (state.stream) return;
  addToLog(userMessage(text));
  const view = new AssistantView();
  addToLog(view.article);
  scrollToBottom();

  const controller = new AbortController();
  state.stream = { controller, view };
  setStreamingUi(true);

  const body = { message: text };
  if (state.conversationId) body.conversation_id = state.conversationId;
  const startedIn = state.conversationId;
  let done = null;

  try {
    const res = await api.streamMessage(body, controller.signal);
    await readEventStream(res.body, (event) => {
      let data;
      try {
        data = JSON.parse(event.data);
      } catch {
        return; // not JSON: not one of ours
      }
      if (!data || typeof data !== 'object') return;
      if (data.conversation_id || data.message_id) {
        view.setIds(data.conversation_id, data.message_id);
        if (!state.conversationId && data.conversation_id && startedIn === null) {
          state.conversationId = data.conversation_id;
          history.replaceState(null, '', conversationHash(data.conversation_id));
          setTitle(text.length > 80 ? `${text.slice(0, 80)}…` : text);
          refreshConversations();
        }
      }
      if (data.done === true) {
        done = data;
        return;
      }
      if (typeof data.token === 'string' && data.token) {
        const stick = isNearBottom();
        view.append(data.token);
        if (stick) scrollToBottom();
      }
    });
    if (!done) {
      view.cutOff();
    } else if (done.error || done.status === 'error') {
      const e = done.error || {};
      view.fail(`The answer failed${e.message ? `: ${e.message}` : '.'}`, e.code);
    } else if (done.status === 'cancelled') {
      view.stopped('Stopped by the server.');
    } else {
      const stick = isNearBottom();
      view.complete(done);
      if (stick) scrollToBottom();
    }
  } catch (err) {
    if (controller.signal.aborted) {
      view.stopped();
    } else if (err instanceof api.ApiError || err instanceof api.NetworkError) {
      view.fail(err.message, err instanceof api.ApiError ? err.code : undefined);
    } else {
      // A failure while reading: the connection broke mid-answer.
      view.fail(`The connection broke while the answer was streaming (${err.message || err}).`);
    }
  } finally {
    state.stream = null;
    setStreamingUi(false);
    refreshConversations();
  }
}

ui.composer.addEventListener('submit', (event) => {
  event.preventDefault();
  const text = ui.input.value.trim();
  if (!text || state.stream) return;
  ui.input.value = '';
  autosize();
  sendMessage(text);
});

ui.input.addEventListener('keydown', (event) => {
  if (event.key !== 'Enter' || event.shiftKey || event.isComposing || event.keyCode === 229) return;
  event.preventDefault();
  if (!state.stream) ui.composer.requestSubmit();
});

function autosize() {
  ui.input.style.height = 'auto';
  ui.input.style.height = `${Math.min(ui.input.scrollHeight + 2, 200)}px`;
}
ui.input.addEventListener('input', autosize);

ui.stop.addEventListener('click', () => {
  stopStreaming();
  ui.input.focus();
});

// ---------------------------------------------------------------- documents

function uploadLine(text, kind = 'info') {
  const li = document.createElement('li');
  li.className = `upload-${kind}`;
  li.textContent = text;
  ui.uploadStatus.append(li);
  return li;
}

async function uploadFiles(files) {
  ui.uploadStatus.replaceChildren();
  for (const file of files) {
    const match = /\.(md|markdown|txt)$/i.exec(file.name);
    if (!match) {
      uploadLine(`${file.name}: only .txt and .md files can be added.`, 'error');
      continue;
    }
    if (file.size > MAX_UPLOAD_BYTES) {
      uploadLine(`${file.name}: too large (${formatBytes(file.size)}; the limit is 8 MB).`, 'error');
      continue;
    }
    const line = uploadLine(`Adding ${file.name}…`);
    try {
      const text = await file.text();
      const doc = await api.uploadDocument(file.name, text, match[1].toLowerCase() !== 'txt');
      line.textContent = doc.duplicate
        ? `${file.name} was already stored (as “${doc.title}”).`
        : `Added ${doc.title} (${doc.chunks} ${doc.chunks === 1 ? 'passage' : 'passages'}).`;
      line.className = 'upload-ok';
    } catch (err) {
      line.textContent = `${file.name}: ${err.message}`;
      line.className = 'upload-error';
    }
  }
  await refreshDocuments();
}

ui.fileInput.addEventListener('change', () => {
  const files = [...ui.fileInput.files];
  ui.fileInput.value = '';
  if (files.length) uploadFiles(files);
});

function documentItem(doc) {
  const li = document.createElement('li');
  li.className = 'doc';
  li.dataset.id = doc.id;
  const info = document.createElement('div');
  info.className = 'doc-info';
  const title = document.createElement('span');
  title.className = 'doc-title';
  title.dir = 'auto';
  title.textContent = doc.title || doc.id;
  const meta = document.createElement('span');
  meta.className = 'doc-meta';
  const passages = doc.chunks === 1 ? '1 passage' : `${doc.chunks} passages`;
  meta.textContent = `${formatBytes(doc.bytes)} · ${passages}`;
  info.append(title, meta);
  const del = document.createElement('button');
  del.type = 'button';
  del.className = 'button-quiet danger-text';
  del.textContent = 'Delete';
  del.setAttribute('aria-label', `Delete ${doc.title || doc.id}`);
  del.addEventListener('click', () => removeDocument(doc, li, del));
  li.append(info, del);
  return li;
}

async function removeDocument(doc, li, button) {
  if (!window.confirm(`Delete “${doc.title || doc.id}”? Its passages leave the index.`)) return;
  button.disabled = true;
  try {
    await api.deleteDocument(doc.id);
    const next = li.nextElementSibling?.querySelector('button') || li.previousElementSibling?.querySelector('button');
    li.remove();
    ui.uploadStatus.replaceChildren();
    uploadLine(`Deleted ${doc.title || doc.id}.`, 'ok');
    updateDocumentCount();
    (next || ui.fileInput).focus();
  } catch (err) {
    button.disabled = false;
    ui.uploadStatus.replaceChildren();
    uploadLine(`Could not delete ${doc.title || doc.id}: ${err.message}`, 'error');
  }
}

function updateDocumentCount() {
  const n = ui.documentList.children.length;
  ui.documentsCount.textContent = n ? `(${n})` : '';
  $('documents-empty').hidden = n !== 0;
}

async function refreshDocuments() {
  try {
    const { documents = [] } = await api.listDocuments();
    const sorted = [...documents].sort((a, b) => (b.created_at || 0) - (a.created_at || 0));
    ui.documentList.replaceChildren(...sorted.map(documentItem));
    updateDocumentCount();
  } catch (err) {
    ui.uploadStatus.replaceChildren();
    uploadLine(`Could not list documents: ${err.message}`, 'error');
  }
}

// ---------------------------------------------------------------- API key

ui.apiKey.value = api.getApiKey();
ui.apiKeyForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const key = ui.apiKey.value.trim();
  const ok = api.setApiKey(key);
  ui.apiKeyStatus.textContent = !ok
    ? 'This browser does not allow storing the key.'
    : key
      ? 'Saved. It is sent with every request.'
      : 'Cleared.';
});
ui.apiKeyClear.addEventListener('click', () => {
  ui.apiKey.value = '';
  api.setApiKey('');
  ui.apiKeyStatus.textContent = 'Cleared.';
});

// ---------------------------------------------------------------- start

setSidebarOpen(false, { focus: false });
setDocumentsOpen(false, { focus: false });
refreshConversations();
const initial = idFromHash();
if (initial) openConversation(initial);
else showEmptyState(true);
document.documentElement.dataset.ready = 'true';
