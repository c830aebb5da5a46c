// What the live view and the history share: transcript lines and turn latency bars.

import { el, ms } from './dom.js';

export const PARTS = [
  ['endpoint_ms', 'endpoint', 'endpoint'],
  ['stt_ms', 'stt', 'STT'],
  ['webhook_ms', 'webhook', 'webhook'],
  ['tts_first_audio_ms', 'tts', 'TTS'],
];
const ROLES = { caller: 'Caller', agent: 'Agent', system: 'System' };
const MIN_SCALE_MS = 2000; // bars share one scale: the slowest turn shown, at least this

// A stored line of an interrupted reply reads "text [heard: what was heard]".
const STORED_HEARD = /^([\s\S]*) \[heard: ([\s\S]*)\]$/;

export function storedLine(entry) {
  const match = entry.role === 'agent' ? STORED_HEARD.exec(entry.text) : null;
  return { role: entry.role, text: match ? match[1] : entry.text,
           heard: match ? match[2] : null, at: entry.at };
}

export function transcriptItem(line) {
  const role = ROLES[line.role] || line.role;
  return el('li', { class: `line ${line.role}` },
    el('span', { class: 'who', text: role }),
    el('p', { class: 'said', text: line.text }),
    line.heard !== null && line.heard !== undefined
      ? el('p', { class: 'heard' },
        el('span', { class: 'tag', text: 'Cut short. Heard: ' }),
        line.heard || '(nothing)')
      : null);
}

export function turnTotal(turn) {
  if (turn.total_ms !== null && turn.total_ms !== undefined) return turn.total_ms;
  return PARTS.reduce((sum, [key]) => sum + (turn[key] || 0), 0);
}

export function scaleFor(turns) {
  return Math.max(MIN_SCALE_MS, ...turns.map(turnTotal));
}

export function turnItem(turn, scale) {
  const total = turnTotal(turn);
  const parts = PARTS.filter(([key]) => turn[key] !== null && turn[key] !== undefined);
  const described = parts.map(([key, , label]) => `${label} ${ms(turn[key])}`).join(', ');
  const bar = el('div', {
    class: 'bar', role: 'img',
    'aria-label': `Turn ${turn.turn}: ${ms(total)} to the reply; ${described || 'measuring'}`,
  });
  // Widths through the CSSOM: the page's policy forbids style attributes in markup.
  bar.style.width = `${Math.max(2, Math.min(100, (total / scale) * 100))}%`;
  for (const [key, name] of parts) {
    const part = el('span', { class: `seg ${name}` });
    part.style.flexGrow = String(Math.max(turn[key], 0));
    bar.append(part);
  }
  const notes = [];
  if (turn.total_ms === null || turn.total_ms === undefined) notes.push('measuring');
  if (turn.webhook_error) notes.push(`webhook failed: ${turn.webhook_error}`);
  if (turn.interrupted) notes.push('interrupted');
  return el('li', { class: 'turn', 'data-turn': turn.turn },
    el('p', { class: 'turn-title' },
      el('strong', { text: `Turn ${turn.turn}` }), ` · ${ms(total)}`,
      notes.length ? el('span', { class: 'note', text: ` (${notes.join(', ')})` }) : null),
    el('div', { class: 'track' }, bar),
    el('p', { class: 'parts', 'aria-hidden': 'true',
              text: parts.map(([key, , label]) => `${label} ${Math.round(turn[key])}`).join(' · ') }));
}

export function callTitle(call) {
  const who = call.direction === 'out' ? call.destination : call.caller;
  return `${call.direction === 'out' ? 'Outbound call to' : 'Inbound call from'} ${who || 'unknown'}`;
}
