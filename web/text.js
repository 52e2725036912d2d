// Text direction and citation markers. Model output is only ever put into the page as text
// nodes (never as HTML).

const RTL_LANGUAGES = new Set(['he', 'iw', 'yi', 'ar', 'fa', 'ur', 'ps', 'sd', 'ug', 'ckb', 'dv']);

const RTL_CHAR =
  /[\p{Script=Hebrew}\p{Script=Arabic}\p{Script=Syriac}\p{Script=Thaana}\p{Script=Nko}\p{Script=Samaritan}\p{Script=Mandaic}\p{Script=Adlam}]/u;
const STRONG_CHAR = /[\p{L}]/u;

/** True for the languages written right to left (he, ar, fa, ur, ...). */
export function isRtlLanguage(language) {
  if (!language) return false;
  return RTL_LANGUAGES.has(String(language).toLowerCase().split(/[-_]/)[0]);
}

/** "rtl", "ltr", or null when the text has no strong (letter) character. */
export function firstStrongDirection(text) {
  for (const ch of text) {
    if (RTL_CHAR.test(ch)) return 'rtl';
    if (STRONG_CHAR.test(ch)) return 'ltr';
  }
  return null;
}

/**
 * Sets dir (and lang when known) on an element: from the language code when there is one
 * ("he", "ar", "fa", "ur" are right to left), else from the text's first strong character.
 */
export function applyDirection(el, { language, text } = {}) {
  const known = language && !['und', 'un', 'xx', 'unknown'].includes(language);
  if (known) {
    el.lang = language;
    el.dir = isRtlLanguage(language) ? 'rtl' : 'ltr';
  } else {
    el.dir = (text && firstStrongDirection(text)) || 'auto';
  }
  return el.dir;
}

// `[1]`, `[2, 3]`, `[1][2]`.
const MARKER = /\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]/g;

/**
 * Fills `container` with `text`, turning `[n]` markers for which `linkFor(n)` returns an
 * element into that element (a link to source n). Everything else stays plain text.
 * @param {HTMLElement} container
 * @param {string} text
 * @param {(n: number) => HTMLElement|null} linkFor
 */
export function renderWithCitations(container, text, linkFor) {
  container.textContent = '';
  const frag = document.createDocumentFragment();
  let last = 0;
  for (const match of text.matchAll(MARKER)) {
    const numbers = match[1].split(',').map((s) => Number.parseInt(s.trim(), 10));
    const links = numbers.map((n) => linkFor(n));
    if (links.some((l) => !l)) continue; // not a marker we can resolve: keep it as text
    if (match.index > last) frag.append(text.slice(last, match.index));
    if (links.length === 1) {
      frag.append(links[0]);
    } else {
      frag.append('[');
      links.forEach((link, i) => {
        if (i > 0) frag.append(', ');
        link.textContent = String(numbers[i]);
        frag.append(link);
      });
      frag.append(']');
    }
    last = match.index + match[0].length;
  }
  if (last < text.length) frag.append(text.slice(last));
  container.append(frag);
}

/** "3 minutes ago", "yesterday", or a date. `ms` is a Unix time in milliseconds. */
export function relativeTime(ms, now = Date.now()) {
  if (!Number.isFinite(ms) || ms <= 0) return '';
  const seconds = Math.round((now - ms) / 1000);
  const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });
  if (Math.abs(seconds) < 45) return rtf.format(0, 'second');
  const minutes = Math.round(seconds / 60);
  if (Math.abs(minutes) < 60) return rtf.format(-minutes, 'minute');
  const hours = Math.round(minutes / 60);
  if (Math.abs(hours) < 24) return rtf.format(-hours, 'hour');
  const days = Math.round(hours / 24);
  if (Math.abs(days) < 7) return rtf.format(-days, 'day');
  return new Date(ms).toLocaleDateString();
}

export function formatBytes(n) {
  if (!Number.isFinite(n)) return '';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}
