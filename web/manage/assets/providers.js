// Progressive enhancement for the provider pages; every page works without it.
// - A delete form whose button asks first (data-confirm, manage.js) skips the confirm page.
// - After a test message the result gets the focus, so a screen reader reads it.
document.querySelectorAll('form[data-js-confirmed]').forEach((form) => {
  const input = document.createElement('input');
  input.type = 'hidden';
  input.name = 'confirmed';
  input.value = 'yes';
  form.append(input);
});
const focusTarget = document.getElementById('problems') || document.getElementById('test-result');
if (focusTarget) focusTarget.focus();
