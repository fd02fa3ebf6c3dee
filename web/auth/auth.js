// /auth/index: posts user, realm and pass to /auth/check (the same check and audit as
// /validate/check) and shows the reason class the user can act on. Served from 'self'
// so the page can keep a strict CSP.
'use strict';
(function () {
  var form = document.getElementById('login');
  var result = document.getElementById('result');
  var pass = document.getElementById('pass');
  // /auth/index3: the OTP has its own field; the check gets password followed by OTP as `pass`
  var otp = document.getElementById('otp');
  var button = document.getElementById('submit');

  var FAILED = 'Wrong password or code.';
  var TEXTS = {
    ok: ['You are logged in: password and code were right.', 'success'],
    wrongCredentials: [FAILED, 'failure'],
    deliveryFailed: ['The code could not be sent — try again or contact support.', 'failure'],
    directoryUnavailable: ['The user directory is not reachable — try again later or contact support.', 'failure'],
  };

  function show(text, kind) {
    result.textContent = text;
    result.className = kind;
  }

  function describe(data) {
    var r = data && data.result;
    if (r === 'codeSent' || r === 'codePending') {
      var where = typeof data.destination === 'string' && data.destination ? ' to ' + data.destination : '';
      var head = r === 'codeSent' ? 'A code was sent' + where + '.' : 'Your code is on its way' + where + '.';
      return [head + ' Enter your password followed by the code.', 'challenge'];
    }
    return TEXTS[r] || [FAILED, 'failure'];
  }

  form.addEventListener('submit', function (event) {
    event.preventDefault();
    var body = new URLSearchParams(new FormData(form));
    if (otp) {
      body.set('pass', pass.value + otp.value);
      body.delete('otp');
    }
    button.disabled = true;
    show('Checking…', 'pending');
    fetch('/auth/check', {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
      body: body.toString(),
      credentials: 'omit',
    })
      .then(function (res) { return res.json(); })
      .then(function (data) {
        var d = describe(data);
        show(d[0], d[1]);
      })
      .catch(function () { show('The check could not be done — try again.', 'failure'); })
      .then(function () {
        pass.value = '';
        if (otp) otp.value = '';
        button.disabled = false;
        pass.focus();
      });
  });
})();
