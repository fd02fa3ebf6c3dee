// Tokens area, progressive enhancement only: every form works without this file.
// Enrollment: show only the fields of the chosen token type (the server ignores the others).
const typeSelect = document.querySelector('form.enroll select[name=type]');
if (typeSelect) {
  const show = () => {
    document.querySelectorAll('form.enroll [data-token-types]').forEach((el) => {
      el.hidden = !el.getAttribute('data-token-types').split(' ').includes(typeSelect.value);
    });
  };
  typeSelect.addEventListener('change', show);
  show();
}
// Removal: ask here, naming the token; without scripts the server asks on a page of its own.
document.querySelectorAll('form[data-remove-confirm]').forEach((form) => {
  form.addEventListener('submit', (e) => {
    if (!window.confirm(form.getAttribute('data-remove-confirm'))) {
      e.preventDefault();
      return;
    }
    const confirmed = form.querySelector('[data-confirmed]');
    if (confirmed) confirmed.value = '1';
  });
});
