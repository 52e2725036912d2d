// The messages of a conversation as DOM: the user's messages, and assistant answers that
// grow token by token and end with their sources. Model output goes in as text only.

import { applyDirection, firstStrongDirection, isRtlLanguage, renderWithCitations } from './text.js';

let counter = 0;

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** The user's message; right to left when its first strong character is (or its language is). */
export function userMessage(text, language) {
  const article = el('article', 'msg msg-user');
  article.append(el('h3', 'visually-hidden', 'You said'));
  const body = el('div', 'msg-body');
  const p = el('div', 'msg-text', text);
  const dir = firstStrongDirection(text) || (isRtlLanguage(language) ? 'rtl' : 'auto');
  body.dir = dir;
  if (language && language !== 'und' && language !== 'un') body.lang = language;
  body.append(p);
  article.append(body);
  return article;
}

/** One assistant answer: streaming text, then citations and sources. */
export class AssistantView {
  constructor() {
    this.key = `answer-${++counter}`;
    this.text = '';
    this.sources = [];
    this.messageId = null;
    this.conversationId = null;

    this.article = el('article', 'msg msg-assistant');
    this.article.id = this.key;
    this.article.append(el('h3', 'visually-hidden', 'Answer'));
    this.body = el('div', 'msg-body');
    this.body.dir = 'auto';
    this.textEl = el('div', 'msg-text answer');
    this.textNode = document.createTextNode('');
    this.textEl.append(this.textNode);
    this.statusEl = el('p', 'msg-status');
    this.sourcesEl = el('section', 'sources');
    this.sourcesEl.hidden = true;
    this.body.append(this.textEl, this.statusEl, this.sourcesEl);
    this.article.append(this.body);
    this.setState('streaming');
  }

  /** Builds the view of a stored assistant message (GET /api/conversations/{id}). */
  static fromStored(message) {
    const view = new AssistantView();
    view.messageId = message.id || null;
    view.append(message.content || '');
    const sources = Array.isArray(message.sources) ? message.sources : [];
    view.complete({ language: message.language, sources, finish_reason: message.finish_reason });
    switch (message.status) {
      case 'complete':
        break;
      case 'cancelled':
        view.stopped('Stopped: this answer was cancelled before it was complete.');
        break;
      case 'error': {
        const e = message.error || {};
        view.fail(`The answer failed${e.message ? `: ${e.message}` : '.'}`, e.code);
        break;
      }
      case 'streaming':
        view.setState('partial', 'This answer is still being written, or was interrupted. Reopen the conversation to see more.');
        break;
      default:
        break;
    }
    return view;
  }

  setIds(conversationId, messageId) {
    this.conversationId = conversationId || this.conversationId;
    this.messageId = messageId || this.messageId;
    if (this.messageId) this.article.dataset.messageId = this.messageId;
    if (this.conversationId) this.article.dataset.conversationId = this.conversationId;
  }

  /**
   * state: streaming | complete | stopped | error | cut | partial.
   * While streaming the article is aria-busy, so screen readers read the answer once whole.
   */
  setState(state, message = '', kind = state) {
    this.state = state;
    this.article.dataset.state = state;
    this.article.setAttribute('aria-busy', state === 'streaming' ? 'true' : 'false');
    this.statusEl.textContent = '';
    this.statusEl.className = `msg-status status-${kind}`;
    if (state === 'streaming') {
      if (!this.text) {
        const dots = el('span', 'typing');
        dots.setAttribute('aria-hidden', 'true');
        dots.append(el('span'), el('span'), el('span'));
        this.statusEl.append(dots, el('span', 'visually-hidden', 'Writing the answer…'));
      }
    } else if (message) {
      this.statusEl.textContent = message;
    }
    this.statusEl.hidden = this.statusEl.textContent === '' && !this.statusEl.firstChild;
  }

  append(token) {
    if (!token) return;
    const first = this.text === '';
    this.text += token;
    this.textNode.appendData(token);
    if (first && this.state === 'streaming') this.setState('streaming'); // drop the typing dots
    if (this.body.dir === 'auto') {
      const dir = firstStrongDirection(this.text);
      if (dir) this.body.dir = dir;
    }
  }

  /** The done event (or a stored message): direction from its language, [n] links, sources. */
  complete(done) {
    this.sources = Array.isArray(done.sources) ? done.sources : [];
    applyDirection(this.body, { language: done.language, text: this.text });
    renderWithCitations(this.textEl, this.text, (n) => this.citationLink(n));
    this.renderSources();
    let note = '';
    if (done.finish_reason === 'length') note = 'The answer reached the length limit and may be incomplete.';
    if (!this.text && this.sources.length === 0 && !note) note = 'The answer is empty.';
    this.setState('complete', note, note ? 'note' : 'complete');
  }

  stopped(message = 'Stopped. The part of the answer written so far is saved.') {
    this.setState('stopped', message);
  }

  fail(message, code) {
    this.setState('error', code ? `${message} (${code})` : message);
  }

  cutOff() {
    this.setState(
      'cut',
      'The answer was cut off: the connection ended before the answer was complete. Reopen the conversation to see what was saved, or ask again.',
      'error',
    );
  }

  sourceId(n) {
    return `${this.key}-source-${n}`;
  }

  citationLink(n) {
    const source = this.sources[n - 1];
    if (!source) return null;
    const a = el('a', 'cite', `[${n}]`);
    a.href = `#${this.sourceId(n)}`;
    a.dataset.source = String(n);
    a.title = source.title || `Source ${n}`;
    a.setAttribute('aria-label', `Source ${n}: ${source.title || 'untitled'}`);
    a.addEventListener('click', (event) => {
      event.preventDefault();
      this.revealSource(n);
    });
    return a;
  }

  revealSource(n) {
    const item = this.sourcesEl.querySelector(`#${CSS.escape(this.sourceId(n))}`);
    if (!item) return;
    const details = item.querySelector('details');
    if (details) details.open = true;
    item.classList.remove('flash');
    void item.offsetWidth; // restart the highlight animation
    item.classList.add('flash');
    const summary = item.querySelector('summary');
    item.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
    if (summary) summary.focus({ preventScroll: true });
  }

  renderSources() {
    this.sourcesEl.textContent = '';
    if (this.sources.length === 0) {
      this.sourcesEl.hidden = true;
      return;
    }
    const headingId = `${this.key}-sources`;
    const heading = el('h4', 'sources-title', this.body.dir === 'rtl' && this.body.lang === 'he' ? 'מקורות' : 'Sources');
    heading.id = headingId;
    this.sourcesEl.setAttribute('aria-labelledby', headingId);
    const list = el('ol', 'source-list');
    this.sources.forEach((source, i) => {
      const n = i + 1;
      const item = el('li', 'source');
      item.id = this.sourceId(n);
      const details = el('details');
      const summary = el('summary');
      const title = el('span', 'source-title', source.title || 'Untitled document');
      title.dir = 'auto';
      summary.append(el('span', 'source-n', `[${n}]`), ' ', title);
      if (typeof source.score === 'number') {
        const score = el('span', 'source-score', source.score.toFixed(3));
        score.title = 'retrieval score';
        summary.append(' ', score);
      }
      const passage = el('blockquote', 'source-text', source.text || '');
      passage.dir = 'auto';
      details.append(summary, passage);
      item.append(details);
      list.append(item);
    });
    this.sourcesEl.append(heading, list);
    this.sourcesEl.hidden = false;
  }
}
