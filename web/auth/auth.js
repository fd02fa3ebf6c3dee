// /auth/index: posts user, realm and pass to /validate/check and shows the answer
// (spec 1.7). Served from 'self' so the page can keep a strict CSP.
'use strict';
(function () {
  var form = document.getElementById('login');
  var result = document.getElementById('result');
  var pass = document.getElementById('pass');
  var button = document.getElementById('submit');

  function show(text, kind) {
    result.textContent = text;
    result.className = kind;
  }

  form.addEventListener('submit', function (event) {
    event.preventDefault();
    var body = new URLSearchParams(new FormData(form));
    button.disabled = true;
    show('Checking…', 'pending');
    fetch('/validate/check', {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
      body: body.toString(),
      credentials: 'omit',
    })
      .then(function (res) { return res.json(); })
      .then(function (data) {
        var r = data && data.result;
        if (r && r.status === true && r.value === true) {
          show('User successfully authenticated!', 'success');
        } else if (data && data.detail && typeof data.detail.message === 'string' && data.detail.transactionid) {
          show(data.detail.message + ' (challenge ' + data.detail.transactionid + '): enter your password followed by the one-time password.', 'challenge');
        } else {
          show('User failed to authenticate!', 'failure');
        }
      })
      .catch(function () { show('User failed to authenticate!', 'failure'); })
      .then(function () {
        pass.value = '';
        button.disabled = false;
        pass.focus();
      });
  });
})();
