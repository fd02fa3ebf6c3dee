// Progressive enhancement for the RADIUS, settings, administrators and audit pages; each works without it.
// - A delete or revoke form whose button asks first (data-confirm, manage.js) skips the confirm page.
// - A secret shown once is selected when focused, ready to copy.
document.querySelectorAll('form[data-js-confirmed]').forEach((form) => {
  const input = document.createElement('input');
  input.type = 'hidden';
  input.name = 'confirmed';
  input.value = 'yes';
  form.append(input);
});
document.querySelectorAll('input.secret-value').forEach((el) => {
  el.addEventListener('focus', () => el.select());
});
