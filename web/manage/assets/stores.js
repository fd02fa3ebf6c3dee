// Progressive enhancement for the user-store, realm and user pages; every page works without it.
// - "Test connection" and "Look up one user" run in place: a typed password stays in its field
//   (the server never sends one back) and the page does not jump.
// - The OpenLDAP / Active Directory buttons fill their values in at once.
// - Enter in the "Login to look up" field looks the user up instead of saving.
// - A delete form whose button asks first (data-confirm, manage.js) skips the confirm page.

document.querySelectorAll('form[data-js-confirmed]').forEach((form) => {
  const input = document.createElement('input');
  input.type = 'hidden';
  input.name = 'confirmed';
  input.value = 'yes';
  form.append(input);
});

document.addEventListener('click', (e) => {
  const button = e.target.closest('button[data-preset]');
  if (!button || !button.form) return;
  e.preventDefault();
  const values = JSON.parse(button.getAttribute('data-preset'));
  for (const [name, value] of Object.entries(values)) {
    const input = button.form.elements.namedItem(name);
    if (input && 'value' in input) input.value = value;
  }
  const status = button.form.querySelector('.preset-status');
  if (status) status.textContent = `${button.textContent.trim()} values filled in.`;
});

document.addEventListener('keydown', (e) => {
  if (e.key !== 'Enter') return;
  const input = e.target.closest && e.target.closest('input[data-enter]');
  if (!input || !input.form) return;
  const button = input.form.querySelector(`button[name="action"][value="${input.getAttribute('data-enter')}"]`);
  if (!button) return;
  e.preventDefault();
  button.click();
});

document.addEventListener('submit', async (e) => {
  const form = e.target;
  const button = e.submitter;
  if (form.id !== 'resolver-form' || !button || !button.hasAttribute('data-inline') || form.dataset.plain) return;
  e.preventDefault();
  const typed = [...form.querySelectorAll('input[type="password"]')].map((i) => [i.name, i.value]);
  const body = new URLSearchParams(new FormData(form, button));
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  let response;
  try {
    // the buttons are named "action", which shadows form.action
    response = await fetch(form.getAttribute('action'), { method: 'POST', body, credentials: 'same-origin' });
  } catch {
    // no answer: send the form the ordinary way
    button.disabled = false;
    form.dataset.plain = '1';
    form.requestSubmit(button);
    return;
  }
  const doc = new DOMParser().parseFromString(await response.text(), 'text/html');
  const fresh = doc.getElementById('resolver-editor');
  const old = document.getElementById('resolver-editor');
  if (response.redirected || !fresh || !old) {
    window.location.assign(response.url);
    return;
  }
  old.replaceWith(fresh);
  for (const [name, value] of typed) {
    const input = fresh.querySelector(`input[type="password"][name="${name}"]`);
    if (input) input.value = value;
  }
  // the typed passwords are still in their fields: no need to type them again
  fresh.querySelectorAll('.field-note').forEach((note) => {
    const input = fresh.querySelector(`[aria-describedby~="${note.id}"]`);
    if (input) input.setAttribute('aria-describedby', input.getAttribute('aria-describedby').split(' ').filter((id) => id !== note.id).join(' '));
    note.remove();
  });
  const target = fresh.querySelector('#problems') || fresh.querySelector('#test-result');
  if (target) target.focus();
});
