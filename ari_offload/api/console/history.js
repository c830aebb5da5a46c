// Call history: the REST list with filters, and one call's transcript, latencies and recording.

import { api, apiBlob, seg } from './api.js';
import { byId, clock, duration, el } from './dom.js';
import { callTitle, scaleFor, storedLine, transcriptItem, turnItem } from './calls.js';

export class History {
  constructor() {
    this.form = byId('history-filters');
    this.list = byId('history-list');
    this.detail = byId('call-detail');
    this.recordingUrl = null;
    this.form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.load();
    });
  }

  async load() {
    const status = byId('filter-status').value;
    const direction = byId('filter-direction').value;
    const text = byId('filter-text').value.trim().toLowerCase();
    const params = new URLSearchParams({ limit: byId('filter-limit').value });
    if (status) params.set('status', status);
    if (direction) params.set('direction', direction);
    const error = byId('history-filters-error');
    error.hidden = true;
    let calls;
    try {
      calls = (await api('GET', `/calls?${params}`)).calls;
    } catch (failure) {
      error.textContent = failure.message;
      error.hidden = false;
      return;
    }
    const shown = calls.filter((call) => !text || [call.id, call.caller, call.destination]
      .some((value) => value && value.toLowerCase().includes(text)));
    byId('history-summary').textContent = `${shown.length} of the ${calls.length} newest calls`
      + `${status || direction ? ' with these filters' : ''}${text ? ` matching “${text}”` : ''}.`;
    this.list.replaceChildren(...shown.map((call) => this.item(call)));
  }

  item(call) {
    const length = call.ended_at && (call.answered_at || call.started_at)
      ? (Date.parse(call.ended_at) - Date.parse(call.answered_at || call.started_at)) / 1000 : null;
    return el('li', { class: `history-item ${call.status}`, 'data-call-id': call.id },
      el('button', { type: 'button', class: 'open', onclick: () => this.open(call.id),
                     'aria-controls': 'call-detail' },
        el('span', { class: 'title', text: callTitle(call) }),
        el('span', { class: 'when', text: clock(call.started_at) })),
      el('p', { class: 'meta' },
        el('span', { class: `status ${call.status}`, text: call.status }),
        ` ${duration(length)}`,
        call.hangup_reason ? ` · ${call.hangup_reason}` : ''));
  }

  async open(id) {
    const call = await api('GET', `/calls/${seg(id)}`);
    const title = byId('detail-title');
    title.textContent = callTitle(call);
    const facts = [
      ['Call id', call.id], ['Status', call.status], ['Started', clock(call.started_at)],
      ['Answered', clock(call.answered_at)], ['Ended', clock(call.ended_at)],
      ['Ended because', call.hangup_reason || '–'], ['Flow', call.flow_id || '–'],
    ];
    byId('detail-facts').replaceChildren(...facts.flatMap(([name, value]) => [
      el('dt', { text: name }), el('dd', { text: value })]));
    byId('detail-transcript').replaceChildren(
      ...call.transcript.map((entry) => transcriptItem(storedLine(entry))));
    const scale = scaleFor(call.turns);
    byId('detail-turns').replaceChildren(...call.turns.map((turn) => turnItem(turn, scale)));
    await this.showRecording(call);
    this.detail.hidden = false;
    title.focus();
  }

  // A recorded call has a recording_started_at; the audio is fetched with the key (an <audio>
  // src cannot carry a header) and played from a blob: URL.
  async showRecording(call) {
    const box = byId('detail-recording');
    box.replaceChildren();
    if (this.recordingUrl) URL.revokeObjectURL(this.recordingUrl);
    this.recordingUrl = null;
    if (!call.recording_started_at) return;
    const path = `/calls/${seg(call.id)}/recording`;
    try {
      this.recordingUrl = URL.createObjectURL(await apiBlob(path));
      box.append(el('h3', { text: 'Recording' }),
        el('audio', { controls: true, preload: 'metadata', src: this.recordingUrl,
                      'aria-label': `Recording of ${callTitle(call)}` }));
    } catch (error) {
      box.append(el('p', { class: 'form-error', text: `Recording: ${error.message}` }));
    }
  }
}
