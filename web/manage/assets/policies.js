// Progressive enhancement for the policy pages; every page works without it.
// - The action fields and the free action string stay in sync: changing a field rewrites its
//   item in the string (other items stay as they are), typing in the string sets the fields.
// - A delete form whose button asks first (data-confirm, manage.js) skips the confirm page.
// - The simulator offers only the actions of the chosen scope.

document.querySelectorAll('form[data-js-confirmed]').forEach((form) => {
  const input = document.createElement('input');
  input.type = 'hidden';
  input.name = 'confirmed';
  input.value = 'yes';
  form.append(input);
});

/** Splits an action string at the commas outside quotes: [{ name, negated, value }]. */
function parseItems(text) {
  const pieces = [];
  let current = '';
  let quote = null;
  let afterEquals = false;
  for (const ch of text) {
    if (quote) {
      current += ch;
      if (ch === quote) quote = null;
    } else if (ch === ',') {
      pieces.push(current);
      current = '';
      afterEquals = false;
    } else {
      if (afterEquals && (ch === '"' || ch === "'") && current.slice(current.indexOf('=') + 1).trim() === '') quote = ch;
      if (ch === '=') afterEquals = true;
      current += ch;
    }
  }
  pieces.push(current);
  return pieces.map((p) => p.trim()).filter(Boolean).map((p) => {
    const eq = p.indexOf('=');
    let name = (eq < 0 ? p : p.slice(0, eq)).trim();
    let value = eq < 0 ? undefined : p.slice(eq + 1).trim();
    const negated = name.startsWith('!') || name.startsWith('-');
    if (negated) name = name.slice(1).trim();
    if (value && value.length > 1 && (value[0] === '"' || value[0] === "'") && value.endsWith(value[0])) value = value.slice(1, -1);
    return { name, negated, value, text: p };
  });
}

const quoted = (v) => (/[,'"]/.test(v) ? (v.includes("'") ? `"${v}"` : `'${v}'`) : v);

/** The item text a field stands for, or '' when it is not set. */
function fieldItem(field) {
  const name = field.getAttribute('data-action');
  const kind = field.getAttribute('data-kind');
  if (kind === 'multi') {
    const ticked = [...field.querySelectorAll('input[type="checkbox"]')].filter((c) => c.checked).map((c) => c.name.slice(name.length + 3));
    return ticked.length ? `${name}=${ticked.join(' ')}` : '';
  }
  const value = field.querySelector('select, input').value.trim();
  if (value === '') return '';
  if (kind === 'flag') return value === 'no' ? `!${name}` : name;
  return `${name}=${quoted(value)}`;
}

function setField(field, item) {
  const kind = field.getAttribute('data-kind');
  if (kind === 'multi') {
    const values = item && item.value ? item.value.toLowerCase().split(/\s+/) : [];
    field.querySelectorAll('input[type="checkbox"]').forEach((c) => { c.checked = values.includes(c.name.split('.').pop()); });
    return;
  }
  const control = field.querySelector('select, input');
  let value = '';
  if (item && kind === 'flag') {
    const v = (item.value || '').toLowerCase();
    value = item.negated || ['false', 'no', 'off'].includes(v) || (/^-?\d+$/.test(v) && Number(v) <= 0) ? 'no' : 'yes';
  } else if (item) {
    value = item.value || '';
    const aliases = control.getAttribute('data-aliases');
    if (aliases) value = JSON.parse(aliases)[value.toLowerCase()] || value;
  }
  if (control.tagName === 'SELECT' && value !== '' && ![...control.options].some((o) => o.value === value)) {
    control.append(new Option(`${value} (not a value otpd accepts)`, value));
  }
  control.value = value;
}

const form = document.getElementById('policy-form');
const text = form && form.querySelector('#f-action');
if (form && text) {
  const fields = [...form.querySelectorAll('[data-action]')];
  form.addEventListener('change', (e) => {
    const field = e.target.closest('[data-action]');
    if (!field) return;
    const name = field.getAttribute('data-action');
    const items = parseItems(text.value);
    const replacement = fieldItem(field);
    const at = items.findIndex((i) => i.name === name);
    const texts = items.map((i) => i.text);
    if (at >= 0 && replacement) texts[at] = replacement;
    else if (at >= 0) texts.splice(at, 1);
    else if (replacement) texts.push(replacement);
    text.value = texts.join(', ');
  });
  text.addEventListener('input', () => {
    const items = parseItems(text.value);
    for (const field of fields) setField(field, items.find((i) => i.name === field.getAttribute('data-action')));
  });
}

const simulator = document.getElementById('simulator');
if (simulator) {
  const scope = simulator.querySelector('#s-scope');
  const action = simulator.querySelector('#s-action');
  const offer = () => {
    action.querySelectorAll('optgroup').forEach((g) => {
      const mine = g.getAttribute('data-scope') === scope.value;
      g.hidden = !mine;
      g.disabled = !mine;
    });
    const chosen = action.selectedOptions[0];
    if (chosen && chosen.parentElement.tagName === 'OPTGROUP' && chosen.parentElement.disabled) action.value = '';
  };
  scope.addEventListener('change', offer);
  offer();
  const result = document.getElementById('simulation') || document.getElementById('problems');
  if (result) result.focus();
}
