// Progressive enhancement only: every page works without this file.
// Times are rendered in UTC by the server; show them in the browser's time zone, UTC in the tooltip.
document.querySelectorAll('time[datetime]').forEach((el) => {
  const d = new Date(el.getAttribute('datetime'));
  if (Number.isNaN(d.getTime())) return;
  el.title = `${el.textContent} UTC`;
  el.textContent = d.toLocaleString();
});
// A button with data-confirm asks before its form is sent (the server asks again if JS is off).
document.querySelectorAll('[data-confirm]').forEach((el) => {
  el.addEventListener('click', (e) => {
    if (!window.confirm(el.getAttribute('data-confirm'))) e.preventDefault();
  });
});
