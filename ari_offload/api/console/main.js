// The console: sign in with an access key, then live calls, history, agents and flows.

import { api, onUnauthorized, session } from './api.js';
import { byId, clearErrors, showError } from './dom.js';
import { EventStream } from './events.js';
import { History } from './history.js';
import { LiveCalls } from './live.js';
import { Agents, Flows } from './resources.js';

const VIEWS = ['live', 'history', 'agents', 'flows'];
let current = 'live';

const history = new History();
const flows = new Flows();
const agents = new Agents({ onChange: (list) => flows.setAgents(list) });
const live = new LiveCalls({
  onCount: (count) => { byId('live-count').textContent = String(count); },
  onEnded: () => { if (current === 'history') history.load(); },
});
const stream = new EventStream({
  onEvent: (event) => live.handle(event),
  onStatus: (state, text) => {
    const status = byId('stream-status');
    status.textContent = text;
    status.dataset.state = state;
    if (state === 'connected') live.reload().catch(() => {});
    if (state === 'unauthorized') leave(text);
  },
});

function show(view) {
  current = view;
  byId('view-signin').hidden = view !== 'signin';
  for (const name of VIEWS) byId(`view-${name}`).hidden = name !== view;
  for (const button of document.querySelectorAll('#nav button')) {
    if (button.dataset.view === view) button.setAttribute('aria-current', 'page');
    else button.removeAttribute('aria-current');
  }
  const load = { history: () => history.load(), agents: () => agents.load(),
                 flows: () => Promise.all([agents.load(), flows.load()]) }[view];
  if (load) load().catch((error) => { byId('stream-status').textContent = error.message; });
}

function enter() {
  byId('nav').hidden = false;
  byId('sign-out').hidden = false;
  show('live');
  stream.start();
  agents.load().catch(() => {});
}

function leave(message) {
  stream.stop();
  session.clear();
  live.clear();
  byId('nav').hidden = true;
  byId('sign-out').hidden = true;
  byId('stream-status').textContent = '';
  show('signin');
  if (message) {
    showError(byId('signin-form'), 'signin', ['key'], { field: 'key', message });
  }
  byId('signin-key').focus();
}

async function signIn(event) {
  event.preventDefault();
  const form = byId('signin-form');
  clearErrors(form);
  const input = byId('signin-key');
  const key = input.value.trim();
  if (!key) {
    showError(form, 'signin', ['key'], { field: 'key', message: 'Enter an access key.' });
    return;
  }
  session.set(key);
  try {
    await api('GET', '/calls?limit=1');
  } catch (error) {
    session.clear();
    showError(form, 'signin', ['key'], { field: 'key', message: error.message });
    return;
  }
  input.value = '';
  enter();
}

onUnauthorized((error) => {
  if (session.key) leave(`Signed out: ${error.message}`);
});
byId('signin-form').addEventListener('submit', signIn);
byId('sign-out').addEventListener('click', () => leave(null));
for (const button of document.querySelectorAll('#nav button')) {
  button.addEventListener('click', () => show(button.dataset.view));
}

if (session.key) {
  api('GET', '/calls?limit=1').then(enter, () => leave(null));
} else {
  show('signin');
}
