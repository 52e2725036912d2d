// Browser test of the web chat page (web/) against a running ragstream stack, in Debian's
// headless chromium driven by playwright-core (no browser download).
//
// Usage: node tests/browser/chat.test.mjs BASE_URL [ARTIFACT_DIR]
// Prints "ok - ..." / "not ok - ..." per check and a last line "N passed, M failed";
// exits 1 when any check failed. Screenshots go to ARTIFACT_DIR (tests/artifacts/browser/).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const base = (process.argv[2] || 'http://127.0.0.1:8080').replace(/\/$/, '');
const artifacts = path.resolve(process.argv[3] || path.join(here, '..', 'artifacts', 'browser'));
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';
fs.mkdirSync(artifacts, { recursive: true });

// The whole run stops by itself.
const overall = setTimeout(() => {
  console.log('not ok - the browser test took longer than 170 s; giving up');
  console.log(`${passed} passed, ${failed + 1} failed`);
  process.exit(1);
}, 170_000);

// ------------------------------------------------------------------ documents the test adds

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ragstream-browser-'));
const files = {
  english: path.join(tmp, 'kestrel-point-lighthouse.md'),
  hebrew: path.join(tmp, 'ים-המלח.md'),
  long: path.join(tmp, 'varnholt-glacier-survey.md'),
  scratch: path.join(tmp, 'scratch-notes.txt'),
};
fs.writeFileSync(
  files.english,
  `# The Kestrel Point lighthouse

The Kestrel Point lighthouse stands 47 metres tall on a basalt cliff above the northern harbour.
Its lamp was first lit in 1872 and was converted to electric power in 1931.
The keeper's cottage beside the lighthouse now houses a small museum of maritime charts.

The Kestrel Point light flashes white twice every ten seconds and can be seen 22 nautical miles out to sea.
Visitors can climb the 212 steps of the lighthouse on summer weekends.
`,
);
fs.writeFileSync(
  files.hebrew,
  `# ים המלח

ים המלח הוא אגם מלוח בבקע ים המלח, והנקודה הנמוכה ביותר על פני היבשה.
עומק ים המלח מגיע לכ-300 מטרים בנקודה העמוקה ביותר שלו, בחלק הצפוני של האגם.
מפלס ים המלח יורד בכמטר אחד בכל שנה, משום שמעט מים זורמים אליו מנהר הירדן.

מליחות המים בים המלח גבוהה פי תשעה מזו של האוקיינוס, ולכן אפשר לצוף בו בקלות.
`,
);
const longSentence = (topic, n) =>
  `The Varnholt glacier survey of ${topic} recorded, station by station and season after season, ` +
  `how the ice thinned along the eastern moraine, how the meltwater channels widened beneath the ` +
  `snout, how the survey teams moved their stakes, cameras, radar sleds and weather masts higher ` +
  `every spring, and how the measured retreat of the Varnholt glacier reached ${n} metres in the ` +
  `decade that the survey covers, which is more than any glacier in the range had lost before.`;
fs.writeFileSync(
  files.long,
  `# Varnholt glacier survey\n\n${longSentence('the lower basin', 410)}\n\n${longSentence(
    'the upper cirque',
    380,
  )}\n\n${longSentence('the northern tongue', 295)}\n`,
);
fs.writeFileSync(files.scratch, 'Scratch notes about the quokka census on Rottnest Island, kept only to be deleted.\n');

const TITLES = {
  english: path.basename(files.english),
  hebrew: path.basename(files.hebrew),
  long: path.basename(files.long),
  scratch: path.basename(files.scratch),
};

// ------------------------------------------------------------------ a small runner

let passed = 0;
let failed = 0;
let page;

async function check(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    passed += 1;
    console.log(`ok - ${name} (${Date.now() - t0} ms)`);
  } catch (err) {
    failed += 1;
    console.log(`not ok - ${name} (${Date.now() - t0} ms)`);
    console.log(String(err && err.stack ? err.stack : err).replace(/^/gm, '    '));
    if (page) {
      const slug = name.replace(/[^a-z0-9]+/gi, '-').toLowerCase().slice(0, 60);
      await page.screenshot({ path: path.join(artifacts, `failed-${slug}.png`) }).catch(() => {});
    }
  }
}

async function api(pathname, init) {
  const res = await fetch(base + pathname, init);
  const body = await res.json();
  return { status: res.status, body };
}

// The messages log holds only <article> messages (and the empty state, a <div>).
const lastAnswer = '#messages > article.msg-assistant:last-of-type';

/** Waits until the last answer is no longer streaming; returns its state. */
async function waitAnswerDone(timeout = 20_000) {
  await page.waitForFunction(
    () => {
      const a = [...document.querySelectorAll('.msg-assistant')].at(-1);
      return a && a.dataset.state && a.dataset.state !== 'streaming';
    },
    null,
    { timeout },
  );
  return page.$eval(lastAnswer, (a) => a.dataset.state);
}

/**
 * Starts watching (inside the page, every 5 ms) the next answer's text length and state
 * until it stops streaming. Returns a promise of the observations.
 */
async function watchNextAnswer() {
  const count = await page.$$eval('.msg-assistant', (as) => as.length);
  return page.evaluate(
    (before) =>
      new Promise((resolve) => {
        const seen = [];
        const t0 = performance.now();
        const tick = () => {
          const all = document.querySelectorAll('.msg-assistant');
          if (all.length > before) {
            const a = all[all.length - 1];
            const len = a.querySelector('.answer').textContent.length;
            const state = a.dataset.state;
            const last = seen.at(-1);
            if (!last || last.len !== len || last.state !== state) {
              seen.push({ len, state, t: Math.round(performance.now() - t0) });
            }
            if (state !== 'streaming') return resolve(seen);
          }
          if (performance.now() - t0 > 25_000) return resolve(seen);
          setTimeout(tick, 5);
        };
        tick();
      }),
    count,
  );
}

async function ask(text) {
  await page.fill('#message-input', text);
  await page.press('#message-input', 'Enter');
}

async function openDocuments() {
  if ((await page.getAttribute('#toggle-documents', 'aria-expanded')) !== 'true') {
    await page.click('#toggle-documents');
  }
  await page.waitForSelector('#documents-panel:not([hidden])');
}

async function closeDocuments() {
  if ((await page.getAttribute('#toggle-documents', 'aria-expanded')) === 'true') {
    await page.click('#close-documents');
  }
}

async function upload(file, title) {
  await openDocuments();
  await page.setInputFiles('#file-input', file);
  await page.waitForFunction(
    (t) => [...document.querySelectorAll('#document-list .doc-title')].some((e) => e.textContent === t),
    title,
    { timeout: 15_000 },
  );
}

// ------------------------------------------------------------------ the run

const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'ragstream-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: chromiumPath,
  headless: true,
  args: [
    '--headless=new',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
  viewport: { width: 1280, height: 860 },
  locale: 'en-US',
});
page = context.pages()[0] || (await context.newPage());

const foreignRequests = [];
const pageErrors = [];
const authHeaders = [];
context.on('request', (req) => {
  const url = req.url();
  if (!url.startsWith(base) && !url.startsWith('data:') && !url.startsWith('blob:') && url !== 'about:blank') {
    foreignRequests.push(url);
  }
  if (url.startsWith(`${base}/api/`)) authHeaders.push(req.headers().authorization || null);
});
function watchErrors(p) {
  p.on('pageerror', (err) => pageErrors.push(`pageerror: ${err.message}`));
  p.on('console', (msg) => {
    // The network errors this test causes on purpose (HTTP 503, refused) are logged by the
    // browser itself as "Failed to load resource"; anything else is the page's own error.
    if (msg.type() === 'error' && !/Failed to load resource|net::ERR_/.test(msg.text())) {
      pageErrors.push(`console: ${msg.text()}`);
    }
  });
}
watchErrors(page);

let englishConversation = null;

await check('the page loads with its controls, from the same origin only', async () => {
  const res = await page.goto(`${base}/`, { waitUntil: 'networkidle' });
  assert.equal(res.status(), 200);
  await page.waitForSelector('html[data-ready="true"]');
  assert.equal(await page.title(), 'ragstream');
  for (const sel of ['#new-chat', '#message-input', '#send-button', '#toggle-documents', '#conversation-list']) {
    assert.ok(await page.$(sel), `${sel} is on the page`);
  }
  assert.equal(await page.isVisible('#stop-button'), false, 'no Stop button while idle');
  // Every control is labelled.
  const unlabelled = await page.$$eval('input, textarea', (els) =>
    els.filter((e) => !e.labels || e.labels.length === 0).map((e) => e.id || e.name),
  );
  assert.deepEqual(unlabelled, []);
});

await check('upload a .md file through the file input; it is listed', async () => {
  await upload(files.english, TITLES.english);
  const status = await page.textContent('#upload-status');
  assert.match(status, /Added kestrel-point-lighthouse\.md/);
  const listed = await api('/api/documents');
  assert.ok(listed.body.documents.some((d) => d.title === TITLES.english), 'the server has it');
  await closeDocuments();
});

await check('an answer streams: text grows over >= 3 observations before done, then sources and [1]', async () => {
  const observing = watchNextAnswer();
  await ask('How tall is the Kestrel Point lighthouse?');
  // While streaming: the Stop button is there and the answer is aria-busy.
  await page.waitForSelector('#stop-button:not([hidden])', { timeout: 5_000 });
  const seen = await observing;
  const streaming = seen.filter((s) => s.state === 'streaming' && s.len > 0);
  const lengths = new Set(streaming.map((s) => s.len));
  assert.ok(lengths.size >= 3, `text grew while streaming: ${JSON.stringify(seen)}`);
  assert.equal(seen.at(-1).state, 'complete', `the answer completed: ${JSON.stringify(seen.at(-1))}`);
  assert.ok(seen.at(-1).len > 0);
  assert.equal(await page.isVisible('#stop-button'), false, 'the Stop button goes away when done');
  assert.equal(await page.getAttribute(lastAnswer, 'aria-busy'), 'false');
  // Sources: the uploaded document's title, and [1] a link to the first source.
  const sourceTitles = await page.$$eval(`${lastAnswer} .source-title`, (els) => els.map((e) => e.textContent));
  assert.ok(sourceTitles.includes(TITLES.english), `sources: ${JSON.stringify(sourceTitles)}`);
  const cite = await page.$(`${lastAnswer} .answer a.cite[data-source="1"]`);
  assert.ok(cite, 'a [1] link in the answer');
  assert.equal(await cite.textContent(), '[1]');
  assert.equal(await page.$eval(`${lastAnswer} .source details`, (d) => d.open), false, 'sources start collapsed');
  await cite.click();
  await page.waitForFunction(
    (sel) => document.querySelector(sel)?.open === true,
    `${lastAnswer} .source:first-child details`,
  );
  assert.ok((await page.textContent(`${lastAnswer} .source:first-child .source-text`)).length > 20);
  englishConversation = await page.getAttribute(lastAnswer, 'data-conversation-id');
  assert.match(englishConversation || '', /^conv_/);
  assert.equal(await page.evaluate(() => window.location.hash), `#/c/${englishConversation}`);
  await page.waitForFunction(
    (id) => document.querySelector('#conversation-list a')?.dataset.id === id,
    englishConversation,
  );
  await page.screenshot({ path: path.join(artifacts, 'chat.png') });
});

let hebrewConversation = null;

await check('a Hebrew question gets a right-to-left answer (and message)', async () => {
  await upload(files.hebrew, TITLES.hebrew);
  await closeDocuments();
  await page.click('#new-chat');
  assert.equal(await page.$$eval('.msg', (m) => m.length), 0, 'New chat clears the messages');
  await ask('מה עומק ים המלח?');
  const state = await waitAnswerDone();
  assert.equal(state, 'complete');
  const answer = await page.$eval(`${lastAnswer} .answer`, (e) => ({
    direction: getComputedStyle(e).direction,
    textAlign: getComputedStyle(e).textAlign,
    lang: e.closest('[lang]')?.lang,
    text: e.textContent,
  }));
  assert.equal(answer.direction, 'rtl', JSON.stringify(answer));
  assert.equal(answer.lang, 'he');
  assert.match(answer.text, /[\u0590-\u05FF]/, 'the answer is Hebrew');
  const user = await page.$$eval('.msg-user .msg-text', (els) => getComputedStyle(els.at(-1)).direction);
  assert.equal(user, 'rtl', "the user's Hebrew message is right to left");
  // The lines of the answer hug the right edge of its box, not the left.
  const box = await page.$eval(`${lastAnswer} .answer`, (e) => {
    const r = e.getBoundingClientRect();
    const range = document.createRange();
    range.selectNodeContents(e);
    const rects = [...range.getClientRects()];
    return {
      left: r.left,
      right: r.right,
      textLeft: Math.min(...rects.map((x) => x.left)),
      textRight: Math.max(...rects.map((x) => x.right)),
    };
  });
  assert.ok(box.right - box.textRight < 4, `right-aligned: ${JSON.stringify(box)}`);
  assert.ok(box.textLeft - box.left > 40, `short lines leave room on the left: ${JSON.stringify(box)}`);
  const titles = await page.$$eval(`${lastAnswer} .source-title`, (els) => els.map((e) => e.textContent));
  assert.ok(titles.includes(TITLES.hebrew), `sources: ${JSON.stringify(titles)}`);
  hebrewConversation = await page.getAttribute(lastAnswer, 'data-conversation-id');
  await page.screenshot({ path: path.join(artifacts, 'hebrew-rtl.png') });
});

await check('the conversation list is newest first and opens a stored conversation with its sources', async () => {
  const ids = await page.$$eval('#conversation-list a', (as) => as.map((a) => a.dataset.id));
  assert.equal(ids[0], hebrewConversation, `newest first: ${JSON.stringify(ids)}`);
  assert.ok(ids.includes(englishConversation));
  assert.equal(
    await page.getAttribute(`#conversation-list a[data-id="${hebrewConversation}"]`, 'aria-current'),
    'page',
  );
  await page.click(`#conversation-list a[data-id="${englishConversation}"]`);
  await page.waitForFunction(() => document.querySelectorAll('.msg').length === 2);
  assert.match(await page.textContent('.msg-user .msg-text'), /Kestrel Point lighthouse/);
  assert.equal(await page.getAttribute('.msg-assistant', 'data-state'), 'complete');
  assert.ok(await page.$('.msg-assistant .answer a.cite[data-source="1"]'), 'stored answer has its [1] link');
  const titles = await page.$$eval('.msg-assistant .source-title', (els) => els.map((e) => e.textContent));
  assert.ok(titles.includes(TITLES.english));
  assert.equal(await page.textContent('#conversation-title'), 'How tall is the Kestrel Point lighthouse?');
  // A follow-up goes to the same conversation.
  await ask('When was the Kestrel Point lamp first lit?');
  assert.equal(await waitAnswerDone(), 'complete');
  assert.equal(await page.getAttribute(lastAnswer, 'data-conversation-id'), englishConversation);
  const stored = await api(`/api/conversations/${englishConversation}`);
  assert.equal(stored.body.messages.length, 4);
});

await check('Stop aborts a long answer: the page says stopped and the server saves it cancelled', async () => {
  await upload(files.long, TITLES.long);
  await closeDocuments();
  await page.click('#new-chat');
  await ask('How far did the Varnholt glacier retreat according to the survey?');
  await page.waitForFunction(
    () => {
      const a = [...document.querySelectorAll('.msg-assistant')].at(-1);
      return a && a.dataset.state === 'streaming' && a.querySelector('.answer').textContent.length > 0;
    },
    null,
    { timeout: 10_000 },
  );
  const conversationId = await page.getAttribute(lastAnswer, 'data-conversation-id');
  const messageId = await page.getAttribute(lastAnswer, 'data-message-id');
  assert.match(messageId || '', /^msg_/);
  await page.click('#stop-button');
  assert.equal(await waitAnswerDone(5_000), 'stopped');
  assert.match(await page.textContent(`${lastAnswer} .msg-status`), /stopped/i);
  const partial = await page.textContent(`${lastAnswer} .answer`);
  assert.ok(partial.length > 0, 'the partial answer stays');
  assert.equal(await page.isVisible('#stop-button'), false);
  assert.equal(await page.isEnabled('#send-button'), true);
  let status = null;
  for (let i = 0; i < 40 && status !== 'cancelled'; i++) {
    await new Promise((r) => setTimeout(r, 200));
    const conv = await api(`/api/conversations/${conversationId}`);
    status = conv.body.messages?.find((m) => m.id === messageId)?.status;
  }
  assert.equal(status, 'cancelled', 'GET /api/conversations/{id} shows the answer cancelled');
  await page.screenshot({ path: path.join(artifacts, 'stopped.png') });
  // Reopened from the store, it still reads as stopped.
  await page.reload();
  await page.waitForFunction(() => document.querySelectorAll('.msg-assistant').length === 1);
  assert.equal(await page.getAttribute(lastAnswer, 'data-state'), 'stopped');
});

await check('keyboard: Tab reaches the message box with a visible focus ring; Shift+Enter is a newline, Enter sends', async () => {
  await page.goto(`${base}/`, { waitUntil: 'networkidle' });
  await page.waitForSelector('html[data-ready="true"]');
  await page.keyboard.press('Tab');
  const skip = await page.evaluate(() => ({
    cls: document.activeElement.className,
    outline: getComputedStyle(document.activeElement).outlineStyle,
  }));
  assert.equal(skip.cls, 'skip-link', 'the first Tab stop is the skip link');
  let reached = false;
  const ringless = [];
  for (let i = 0; i < 60 && !reached; i++) {
    await page.keyboard.press('Tab');
    const focus = await page.evaluate(() => {
      const e = document.activeElement;
      const s = getComputedStyle(e);
      return { id: e.id, tag: e.tagName, outline: s.outlineStyle, width: parseFloat(s.outlineWidth) };
    });
    if (focus.outline === 'none' || focus.width < 2) ringless.push(`${focus.tag}#${focus.id}`);
    reached = focus.id === 'message-input';
  }
  assert.ok(reached, 'Tab reaches the message box');
  assert.deepEqual(ringless, [], 'every focused control shows a focus ring');
  await page.keyboard.type('Where is the Kestrel Point lighthouse?');
  await page.keyboard.press('Shift+Enter');
  await page.keyboard.type('What does its keeper’s cottage hold?');
  assert.match(await page.inputValue('#message-input'), /lighthouse\?\nWhat does/);
  assert.equal(await page.$$eval('.msg', (m) => m.length), 0, 'Shift+Enter did not send');
  await page.keyboard.press('Enter');
  await page.waitForSelector('.msg-user');
  assert.equal(await page.inputValue('#message-input'), '', 'the box is cleared on send');
  assert.match(await page.textContent('.msg-user .msg-text'), /lighthouse\?\nWhat does/);
  assert.equal(await waitAnswerDone(), 'complete');
  // Enter on a button activates it (buttons are buttons).
  await page.focus('#new-chat');
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => document.querySelectorAll('.msg').length === 0);
});

await check('failures are clear: error event, HTTP error JSON, network error, cut-off stream; tokens stay text', async () => {
  const first = 'retry: 3000\r\n\r\n: ping\r\n\r\nid: 0\r\ndata: {"token":"","done":false,"conversation_id":"conv_000000000000000000000001","message_id":"msg_000000000000000000000001"}\r\n\r\n';
  const scenarios = [
    {
      name: 'error event',
      fulfill: {
        status: 200,
        contentType: 'text/event-stream',
        body: `${first}id: 1\ndata: {"token":"Half an ans","done":false}\n\n: ping\n\nid: 2\ndata: {"token":null,"done":true,"status":"error","error":{"code":"upstream_error","message":"the model stopped answering"}}\n\n`,
      },
      state: 'error',
      status: /the model stopped answering.*upstream_error/,
      text: 'Half an ans',
    },
    {
      name: 'HTTP error JSON',
      fulfill: {
        status: 503,
        contentType: 'application/json',
        body: '{"error":{"code":"shutting_down","message":"the server is shutting down"}}',
      },
      state: 'error',
      status: /the server is shutting down.*shutting_down/,
      text: '',
    },
    { name: 'network error', abort: 'connectionrefused', state: 'error', status: /Could not reach the server/, text: '' },
    {
      name: 'cut off',
      fulfill: {
        status: 200,
        contentType: 'text/event-stream',
        // A token split across a multi-byte character and an HTML-looking token.
        body: Buffer.concat([
          Buffer.from(`${first}id: 1\ndata: {"token":"<img src=x onerror=\\"window.__xss=1\\"> שלום","done":false}\n\nid: 2\ndata: {"token":" partial","done":false}\n\nid: 3\ndata: {"token":" never ends`),
        ]),
      },
      state: 'cut',
      status: /cut off/,
      text: '<img src=x onerror="window.__xss=1"> שלום partial',
    },
  ];
  for (const s of scenarios) {
    await page.click('#new-chat');
    await page.route('**/api/chat/message/stream', (route) =>
      s.abort ? route.abort(s.abort) : route.fulfill(s.fulfill),
    );
    try {
      await ask(`scenario: ${s.name}`);
      const state = await waitAnswerDone(8_000);
      assert.equal(state, s.state, s.name);
      const status = await page.textContent(`${lastAnswer} .msg-status`);
      assert.match(status, s.status, `${s.name}: ${status}`);
      assert.equal(await page.textContent(`${lastAnswer} .answer`), s.text, s.name);
      assert.equal(await page.isVisible('#stop-button'), false);
    } finally {
      await page.unroute('**/api/chat/message/stream');
    }
  }
  assert.equal(await page.$$eval('.answer img', (i) => i.length), 0, 'no element from model output');
  assert.equal(await page.evaluate(() => window.__xss), undefined);
  await page.click('#new-chat');
});

await check('the API key is stored in localStorage and sent as a Bearer token', async () => {
  await page.click('#sidebar .settings summary');
  await page.fill('#api-key', 'test-key-123');
  await page.click('#api-key-form button[type="submit"]');
  assert.equal(await page.evaluate(() => localStorage.getItem('ragstream.apiKey')), 'test-key-123');
  authHeaders.length = 0;
  await openDocuments();
  await page.waitForFunction(() => document.querySelectorAll('#document-list .doc').length > 0);
  assert.ok(authHeaders.includes('Bearer test-key-123'), JSON.stringify(authHeaders));
  await page.click('#api-key-clear');
  assert.equal(await page.evaluate(() => localStorage.getItem('ragstream.apiKey')), null);
  await page.click('#sidebar .settings summary');
});

await check('a .txt upload can be deleted from the documents panel', async () => {
  await upload(files.scratch, TITLES.scratch);
  page.once('dialog', (d) => d.accept());
  await page.click(`#document-list li:has(.doc-title:text-is("${TITLES.scratch}")) button`);
  await page.waitForFunction(
    (t) => ![...document.querySelectorAll('#document-list .doc-title')].some((e) => e.textContent === t),
    TITLES.scratch,
  );
  const listed = await api('/api/documents');
  assert.ok(!listed.body.documents.some((d) => d.title === TITLES.scratch), 'deleted on the server');
  await closeDocuments();
});

await check('phone viewport (390x844): the conversation list collapses, nothing overflows', async () => {
  const phone = await context.newPage();
  watchErrors(phone);
  page = phone;
  await phone.setViewportSize({ width: 390, height: 844 });
  await phone.goto(`${base}/#/c/${hebrewConversation}`, { waitUntil: 'networkidle' });
  await phone.waitForFunction(() => document.querySelectorAll('.msg-assistant[data-state="complete"]').length === 1);
  assert.equal(await phone.isVisible('#sidebar'), false, 'the conversation list is collapsed');
  assert.equal(await phone.isVisible('#toggle-conversations'), true, 'a Chats button opens it');
  const width = await phone.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 390, `no horizontal overflow (${width})`);
  const composer = await phone.$eval('#composer', (e) => e.getBoundingClientRect().bottom);
  assert.ok(composer <= 844 && composer > 700, `the message box is at the bottom (${composer})`);
  assert.equal(await phone.$eval(`${lastAnswer} .answer`, (e) => getComputedStyle(e).direction), 'rtl');
  await phone.screenshot({ path: path.join(artifacts, 'phone.png') });
  await phone.click('#toggle-conversations');
  await phone.waitForFunction(() => getComputedStyle(document.getElementById('sidebar')).visibility === 'visible');
  await phone.waitForTimeout(300); // the slide-in transition
  assert.equal(await phone.getAttribute('#toggle-conversations', 'aria-expanded'), 'true');
  assert.equal(await phone.evaluate(() => document.activeElement.id), 'new-chat', 'focus moves into the list');
  await phone.screenshot({ path: path.join(artifacts, 'phone-conversations.png') });
  await phone.keyboard.press('Escape');
  await phone.waitForFunction(() => getComputedStyle(document.getElementById('sidebar')).visibility === 'hidden');
  assert.equal(await phone.evaluate(() => document.activeElement.id), 'toggle-conversations');
});

await check('no external requests and no script errors', async () => {
  assert.deepEqual(foreignRequests, []);
  assert.deepEqual(pageErrors, []);
});

await context.close();
fs.rmSync(profile, { recursive: true, force: true });
fs.rmSync(tmp, { recursive: true, force: true });
clearTimeout(overall);
console.log(`screenshots (and the worker logs, under logs/): ${artifacts}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
