// Live calls: loaded from the REST API once, then kept current by the event stream.

import { api, seg } from './api.js';
import { byId, el, duration } from './dom.js';
import { callTitle, scaleFor, storedLine, transcriptItem, turnItem } from './calls.js';

const KEEP_ENDED_MS = 6000; // an ended call stays in view this long, marked ended

export class LiveCalls {
  constructor({ onCount, onEnded }) {
    this.calls = new Map();
    this.list = byId('live-calls');
    this.empty = byId('live-empty');
    this.onCount = onCount;
    this.onEnded = onEnded;
    setInterval(() => this.tick(), 1000);
  }

  clear() {
    this.calls.clear();
    this.list.replaceChildren();
    this.changed();
  }

  async reload() {
    const data = await api('GET', '/calls?status=ringing,active&limit=100');
    const current = new Set(data.calls.map((call) => call.id));
    for (const [id, state] of this.calls) if (!current.has(id) && !state.ended) this.remove(id);
    await Promise.all(data.calls.map((call) => this.load(call.id, call)));
  }

  async load(id, call = { id }) {
    const state = this.ensure(id, call);
    try {
      const detail = await api('GET', `/calls/${seg(id)}`);
      Object.assign(state.call, detail, { status: state.ended ? state.call.status : detail.status });
      // What the stream said since is newer than the stored lines at the same place.
      detail.transcript.forEach((entry, index) => {
        if (!state.lines.has(index)) this.putLine(state, index, storedLine(entry));
      });
      for (const turn of detail.turns) if (!state.turns.has(turn.turn)) state.turns.set(turn.turn, turn);
      this.renderHead(state);
      this.renderTurns(state);
    } catch (error) {
      if (error.status === 404) this.remove(id);
    }
  }

  handle(event) {
    const { type, data } = event;
    if (type === 'stream.reset') {
      this.reload();
      return;
    }
    const id = event.call_id;
    if (!id) return;
    const known = this.calls.has(id);
    if (type === 'call.started') {
      const state = this.ensure(id, { id, direction: data.direction, caller: data.caller,
                                      started_at: data.started_at, answered_at: data.answered_at });
      state.call.status = 'active';
      this.renderHead(state);
      if (!known) this.load(id); // its flow, destination: the REST view has them
      return;
    }
    if (!known && (type === 'call.ended' || type === 'call.failed')) return;
    const state = this.ensure(id, { id });
    if (!known) this.load(id);
    if (type === 'transcript.added' || type === 'transcript.corrected') {
      this.putLine(state, data.index, data);
    } else if (type === 'turn.updated' || type === 'turn.finished') {
      state.turns.set(data.turn, { ...state.turns.get(data.turn), ...data });
      this.renderTurns(state);
    } else if (type === 'call.ended' || type === 'call.failed') {
      state.ended = true;
      state.call.status = type === 'call.ended' ? 'ended' : 'failed';
      state.call.hangup_reason = data.reason;
      state.endedAt = Date.now();
      this.renderHead(state);
      for (const control of state.node.querySelectorAll('.controls button, .controls input')) {
        control.disabled = true;
      }
      this.changed();
      this.onEnded(id);
      setTimeout(() => this.remove(id), KEEP_ENDED_MS);
    }
  }

  ensure(id, call) {
    let state = this.calls.get(id);
    if (state) {
      for (const [key, value] of Object.entries(call)) if (value !== undefined) state.call[key] = value;
      return state;
    }
    state = { call: { ...call }, lines: new Map(), turns: new Map(), ended: false };
    state.node = this.card(state);
    this.calls.set(id, state);
    this.list.prepend(state.node);
    this.changed();
    return state;
  }

  remove(id) {
    const state = this.calls.get(id);
    if (!state) return;
    state.node.remove();
    this.calls.delete(id);
    this.changed();
  }

  changed() {
    const live = [...this.calls.values()].filter((state) => !state.ended).length;
    this.empty.hidden = this.calls.size > 0;
    this.onCount(live);
  }

  card(state) {
    const id = state.call.id;
    const refs = {
      title: el('h2', { id: `call-${id}-title` }),
      status: el('span', { class: 'status' }),
      elapsed: el('span', { class: 'elapsed', 'aria-label': 'Duration' }),
      transcript: el('ol', { class: 'transcript', 'aria-live': 'polite', 'aria-relevant': 'additions',
                             'aria-label': 'Transcript' }),
      turns: el('ol', { class: 'turns', 'aria-label': 'Turn latencies' }),
      talkInput: el('input', { id: `talk-${id}`, autocomplete: 'off', maxlength: '1000',
                               'aria-describedby': `talk-${id}-error` }),
      talkError: el('p', { id: `talk-${id}-error`, class: 'field-error', hidden: true }),
      error: el('p', { class: 'form-error', role: 'alert', hidden: true }),
    };
    state.refs = refs;
    const talk = el('form', { class: 'talk', novalidate: true, onsubmit: (e) => this.talk(e, state) },
      el('label', { for: `talk-${id}`, text: 'Say on this call' }),
      el('div', { class: 'inline' }, refs.talkInput, el('button', { type: 'submit', text: 'Talk' })),
      refs.talkError);
    const hangup = el('button', { type: 'button', class: 'danger', text: 'Hang up',
                                  onclick: () => this.hangup(state) });
    return el('li', { class: 'call', 'data-call-id': id },
      el('article', { 'aria-labelledby': `call-${id}-title` },
        el('header', { class: 'call-head' }, refs.title, refs.status, refs.elapsed),
        el('div', { class: 'call-body' },
          el('section', { class: 'panel', 'aria-label': 'Transcript' }, refs.transcript),
          el('section', { class: 'panel', 'aria-label': 'Turn latencies' }, refs.turns)),
        el('div', { class: 'controls' }, talk, hangup, refs.error)));
  }

  renderHead(state) {
    const { call, refs } = state;
    refs.title.textContent = callTitle(call);
    refs.status.textContent = call.status === 'ended' || call.status === 'failed'
      ? `${call.status}${call.hangup_reason ? `: ${call.hangup_reason}` : ''}` : (call.status || 'active');
    refs.status.className = `status ${call.status || 'active'}`;
    this.tickOne(state);
  }

  putLine(state, index, line) {
    const node = transcriptItem(line);
    const old = state.lines.get(index);
    state.lines.set(index, node);
    if (old) {
      old.replaceWith(node);
      return;
    }
    const after = [...state.lines.keys()].filter((i) => i > index).sort((a, b) => a - b)[0];
    const next = after === undefined ? null : state.lines.get(after);
    state.refs.transcript.insertBefore(node, next && next.isConnected ? next : null);
  }

  renderTurns(state) {
    const turns = [...state.turns.values()].sort((a, b) => a.turn - b.turn);
    const scale = scaleFor(turns);
    state.refs.turns.replaceChildren(...turns.map((turn) => turnItem(turn, scale)));
  }

  tick() {
    for (const state of this.calls.values()) this.tickOne(state);
  }

  tickOne(state) {
    const since = Date.parse(state.call.answered_at || state.call.started_at || '');
    if (Number.isNaN(since)) return;
    const until = state.endedAt || Date.now();
    state.refs.elapsed.textContent = duration((until - since) / 1000);
  }

  async talk(event, state) {
    event.preventDefault();
    const { talkInput, talkError } = state.refs;
    talkError.hidden = true;
    talkInput.removeAttribute('aria-invalid');
    try {
      await api('POST', `/calls/${seg(state.call.id)}/talk`, { text: talkInput.value });
      talkInput.value = '';
    } catch (error) {
      talkError.textContent = error.message;
      talkError.hidden = false;
      talkInput.setAttribute('aria-invalid', 'true');
    }
  }

  async hangup(state) {
    state.refs.error.hidden = true;
    try {
      await api('POST', `/calls/${seg(state.call.id)}/hangup`);
      state.refs.status.textContent = 'hanging up…';
    } catch (error) {
      state.refs.error.textContent = error.message;
      state.refs.error.hidden = false;
    }
  }
}
