// DOM helpers. Nodes are built from data, never parsed from HTML strings: a transcript is
// what a caller said, and the page's policy (Trusted Types) refuses HTML built from strings.

export const byId = (id) => document.getElementById(id);

export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

export function ms(value) {
  return value === null || value === undefined ? '–' : `${Math.round(value)} ms`;
}

export function clock(iso) {
  if (!iso) return '–';
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return '–';
  const s = Math.max(0, Math.round(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

// The API's errors name the field; a form shows the message next to it.
export function clearErrors(form) {
  for (const node of form.querySelectorAll('.field-error, .form-error')) {
    node.hidden = true;
    node.textContent = '';
  }
  for (const node of form.querySelectorAll('[aria-invalid]')) node.removeAttribute('aria-invalid');
}

export function showError(form, prefix, fields, error) {
  // "actions[0].agent_id" belongs to the actions field; the message says which item.
  const base = error.field ? error.field.split(/[.[]/)[0] : null;
  const target = base && fields.includes(base) ? byId(`${prefix}-${base}-error`) : null;
  if (target) {
    target.textContent = error.message;
    target.hidden = false;
    const input = byId(`${prefix}-${base}`);
    if (input) {
      input.setAttribute('aria-invalid', 'true');
      input.focus();
    }
    return;
  }
  const general = byId(`${prefix}-form-error`);
  general.textContent = error.message;
  general.hidden = false;
}
