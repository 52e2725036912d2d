// Server-Sent Events over fetch: an incremental parser of the text/event-stream format and a
// reader that feeds it from a response body. (EventSource cannot POST, so the chat page reads
// the stream itself.)
//
// Events are separated by a blank line; `data:` lines are joined with "\n"; `id:` sets the
// last event id; `event:` names the event; `retry:` and `:` comments (`: ping`) are ignored.
// Lines may end in "\n", "\r\n" or "\r", and any of them may be split across chunks.

export class SseParser {
  /** @param {(event: {data: string, id: string|null, event: string}) => void} onEvent */
  constructor(onEvent) {
    this.onEvent = onEvent;
    this.buffer = '';
    this.data = [];
    this.eventName = '';
    this.lastEventId = null;
  }

  /** Feeds decoded text; dispatches every event completed by it. */
  push(text) {
    this.buffer += text;
    let start = 0;
    for (;;) {
      const nl = this.buffer.indexOf('\n', start);
      const cr = this.buffer.indexOf('\r', start);
      let end = -1;
      let next = -1;
      if (cr !== -1 && (nl === -1 || cr < nl)) {
        // A "\r" at the very end may be the first half of "\r\n": wait for the next chunk.
        if (cr === this.buffer.length - 1) break;
        end = cr;
        next = this.buffer[cr + 1] === '\n' ? cr + 2 : cr + 1;
      } else if (nl !== -1) {
        end = nl;
        next = nl + 1;
      } else {
        break;
      }
      this.line(this.buffer.slice(start, end));
      start = next;
    }
    this.buffer = this.buffer.slice(start);
  }

  /** The stream ended: an event without its closing blank line is incomplete and dropped. */
  end() {
    this.buffer = '';
    this.data = [];
    this.eventName = '';
  }

  line(line) {
    if (line === '') {
      if (this.data.length > 0) {
        const event = { data: this.data.join('\n'), id: this.lastEventId, event: this.eventName || 'message' };
        this.data = [];
        this.eventName = '';
        this.onEvent(event);
      } else {
        this.eventName = '';
      }
      return;
    }
    if (line.startsWith(':')) return; // a comment: `: ping` keep-alives
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'data':
        this.data.push(value);
        break;
      case 'id':
        if (!value.includes('\0')) this.lastEventId = value;
        break;
      case 'event':
        this.eventName = value;
        break;
      default:
        break; // `retry:` and unknown fields
    }
  }
}

/**
 * Reads an event stream body to its end, calling onEvent for each event.
 * Resolves when the body ends; rejects on a network error or an abort.
 * @param {ReadableStream<Uint8Array>} body
 */
export async function readEventStream(body, onEvent) {
  const reader = body.getReader();
  const decoder = new TextDecoder('utf-8');
  const parser = new SseParser(onEvent);
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      parser.push(decoder.decode(value, { stream: true }));
    }
    parser.push(decoder.decode());
    parser.end();
  } finally {
    reader.releaseLock();
  }
}
