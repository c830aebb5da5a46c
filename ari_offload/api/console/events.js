// GET /v1.0/events read with fetch: EventSource cannot send the key as a header. Reconnects
// with backoff, resuming after the last event id it saw (Last-Event-ID).

import { authHeaders } from './api.js';

export function parseFrame(frame) {
  const event = { id: null, type: 'message', data: [] };
  for (const line of frame.split('\n')) {
    if (!line || line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const name = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (name === 'id') event.id = value;
    else if (name === 'event') event.type = value;
    else if (name === 'data') event.data.push(value);
    else if (name === 'retry' && /^\d+$/.test(value)) event.retry = Number(value);
  }
  return event;
}

export class EventStream {
  constructor({ onEvent, onStatus }) {
    this.onEvent = onEvent;
    this.onStatus = onStatus;
    this.lastId = null;
    this.retryMs = 3000;
    this.controller = null;
  }

  start() {
    if (this.controller) return;
    this.controller = new AbortController();
    this.run(this.controller.signal);
  }

  stop() {
    if (this.controller) this.controller.abort();
    this.controller = null;
    this.lastId = null;
  }

  async run(signal) {
    let delay = 0;
    while (!signal.aborted) {
      if (delay) {
        this.onStatus('reconnecting', `Reconnecting in ${Math.round(delay / 1000)} s…`);
        await new Promise((resolve) => { setTimeout(resolve, delay); });
        if (signal.aborted) return;
      }
      try {
        const headers = authHeaders({ Accept: 'text/event-stream' });
        if (this.lastId) headers['Last-Event-ID'] = this.lastId;
        const resp = await fetch('/v1.0/events', { headers, signal, cache: 'no-store',
                                                   credentials: 'omit' });
        if (resp.status === 401) { this.onStatus('unauthorized', 'The access key was refused.'); return; }
        if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
        this.onStatus('connected', 'Live');
        delay = 0;
        await this.read(resp.body, signal);
      } catch (error) {
        if (signal.aborted) return;
      }
      delay = Math.min(Math.max(delay * 2, this.retryMs), 30000);
    }
  }

  async read(body, signal) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    while (!signal.aborted) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value.replace(/\r\n?/g, '\n');
      let end = buffer.indexOf('\n\n');
      while (end >= 0) {
        const frame = parseFrame(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
        end = buffer.indexOf('\n\n');
        if (frame.retry) this.retryMs = frame.retry;
        if (frame.id !== null) this.lastId = frame.id;
        if (!frame.data.length) continue;
        try {
          this.onEvent(JSON.parse(frame.data.join('\n')));
        } catch (error) {
          console.warn('event stream: an event could not be shown', error);
        }
      }
    }
  }
}
