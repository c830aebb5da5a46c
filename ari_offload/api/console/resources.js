// Agents and flows: listed, created and edited; the API's field errors shown at the field.

import { api, seg } from './api.js';
import { byId, clearErrors, el, showError } from './dom.js';

const AGENT_FIELDS = ['name', 'detail', 'webhook', 'secret', 'voice', 'speaking_rate',
                      'language', 'events_url'];
const FLOW_FIELDS = ['name', 'actions'];

function editor(prefix, noun) {
  return {
    form: byId(`${prefix}-form`),
    title: byId(`${prefix}-form-title`),
    submit: byId(`${prefix}-submit`),
    cancel: byId(`${prefix}-cancel`),
    editing: null,
    show(item) {
      this.editing = item ? item.id : null;
      this.title.textContent = item ? `Edit ${noun} ${item.name}` : `New ${noun}`;
      this.submit.textContent = item ? `Save ${noun}` : `Create ${noun}`;
      this.cancel.hidden = !item;
      clearErrors(this.form);
    },
  };
}

function item(name, lines, onEdit, onDelete) {
  return el('li', { class: 'resource' },
    el('div', {}, el('strong', { text: name }), ...lines.map((line) => el('p', { class: 'meta', text: line }))),
    el('div', { class: 'inline' },
      el('button', { type: 'button', class: 'quiet', text: 'Edit', 'aria-label': `Edit ${name}`,
                     onclick: onEdit }),
      el('button', { type: 'button', class: 'quiet danger', text: 'Delete',
                     'aria-label': `Delete ${name}`, onclick: onDelete })));
}

function options(select, values, emptyLabel) {
  select.replaceChildren(el('option', { value: '', text: emptyLabel }),
    ...values.map((value) => el('option', { value, text: value })));
}

export class Agents {
  constructor({ onChange }) {
    this.onChange = onChange;
    this.agents = [];
    this.editor = editor('agent', 'agent');
    this.editor.form.addEventListener('submit', (event) => this.save(event));
    this.editor.cancel.addEventListener('click', () => this.fill(null));
  }

  async load() {
    const [agents, voices] = await Promise.all([api('GET', '/agents'), api('GET', '/voices')]);
    this.agents = agents.agents;
    options(byId('agent-voice'), voices.voices.map((v) => v.name), 'server default');
    options(byId('agent-language'), voices.languages, 'server default');
    const rate = byId('agent-speaking_rate');
    rate.min = voices.speaking_rate.min;
    rate.max = voices.speaking_rate.max;
    byId('agent-list').replaceChildren(...this.agents.map((agent) => item(agent.name,
      [agent.webhook, agent.detail].filter(Boolean),
      () => this.fill(agent), () => this.remove(agent))));
    this.onChange(this.agents);
  }

  fill(agent) {
    this.editor.show(agent);
    for (const name of AGENT_FIELDS) {
      const value = agent && name !== 'secret' ? agent[name] : '';
      byId(`agent-${name}`).value = value === null || value === undefined ? '' : String(value);
    }
    byId('agent-name').focus();
  }

  body() {
    const value = (name) => byId(`agent-${name}`).value.trim();
    const orNull = (name) => value(name) || null;
    const body = { name: value('name'), detail: value('detail'), webhook: value('webhook'),
                   voice: orNull('voice'), language: orNull('language'),
                   events_url: orNull('events_url') };
    const rate = value('speaking_rate');
    body.speaking_rate = rate === '' ? null : Number(rate);
    if (value('secret')) body.secret = value('secret');
    else if (!this.editor.editing) body.secret = null;
    return body;
  }

  async save(event) {
    event.preventDefault();
    const { form, editing } = this.editor;
    clearErrors(form);
    try {
      if (editing) await api('PATCH', `/agents/${seg(editing)}`, this.body());
      else await api('POST', '/agents', this.body());
    } catch (error) {
      showError(form, 'agent', AGENT_FIELDS, error);
      return;
    }
    this.fill(null);
    await this.load();
  }

  async remove(agent) {
    if (!window.confirm(`Delete the agent ${agent.name}?`)) return;
    try {
      await api('DELETE', `/agents/${seg(agent.id)}`);
    } catch (error) {
      showError(this.editor.form, 'agent', [], error);
      return;
    }
    await this.load();
  }
}

export class Flows {
  constructor() {
    this.agents = [];
    this.editor = editor('flow', 'flow');
    this.editor.form.addEventListener('submit', (event) => this.save(event));
    this.editor.cancel.addEventListener('click', () => this.fill(null));
    byId('flow-template').addEventListener('click', () => this.template());
  }

  setAgents(agents) {
    this.agents = agents;
    const select = byId('flow-template-agent');
    select.replaceChildren(...agents.map((agent) => el('option', { value: agent.id, text: agent.name })));
  }

  async load() {
    const flows = (await api('GET', '/flows')).flows;
    byId('flow-list').replaceChildren(...flows.map((flow) => item(flow.name,
      [`id ${flow.id}`, flow.actions.map((action) => action.type).join(' → ')],
      () => this.fill(flow), () => this.remove(flow))));
  }

  fill(flow) {
    this.editor.show(flow);
    byId('flow-name').value = flow ? flow.name : '';
    byId('flow-actions').value = flow ? JSON.stringify(flow.actions, null, 2) : '';
    byId('flow-name').focus();
  }

  template() {
    const agentId = byId('flow-template-agent').value;
    const action = { type: 'ai_talk', agent_id: agentId || 'AGENT_ID',
                     welcome_message: 'Hello! How can I help you today?' };
    byId('flow-actions').value = JSON.stringify([action], null, 2);
  }

  async save(event) {
    event.preventDefault();
    const { form, editing } = this.editor;
    clearErrors(form);
    let actions;
    try {
      actions = JSON.parse(byId('flow-actions').value || '[]');
    } catch (error) {
      showError(form, 'flow', FLOW_FIELDS, { field: 'actions', message: `actions: not valid JSON (${error.message})` });
      return;
    }
    const body = { name: byId('flow-name').value.trim(), actions };
    try {
      if (editing) await api('PATCH', `/flows/${seg(editing)}`, body);
      else await api('POST', '/flows', body);
    } catch (error) {
      showError(form, 'flow', FLOW_FIELDS, error);
      return;
    }
    this.fill(null);
    await this.load();
  }

  async remove(flow) {
    if (!window.confirm(`Delete the flow ${flow.name}?`)) return;
    try {
      await api('DELETE', `/flows/${seg(flow.id)}`);
    } catch (error) {
      showError(this.editor.form, 'flow', [], error);
      return;
    }
    await this.load();
  }
}
