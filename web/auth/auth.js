// /auth/index: posts user, realm and pass to /auth/check (the same check and audit as
// /validate/check) and shows the reason class the user can act on. Served from 'self'
// so the page can keep a strict CSP.
'use strict';
// What both test pages share (the challenge page loads this file before challenge.js):
// the reason classes' texts, the result line and the JSON post, as window.otpdAuth.
window.otpdAuth = (function () {
  var FAILED = 'Wrong password or code.';
  var TEXTS = {
    ok: ['You are logged in: password and code were right.', 'success'],
    wrongCredentials: [FAILED, 'failure'],
    deliveryFailed: ['The code could not be sent — try again or contact support.', 'failure'],
    directoryUnavailable: ['The user directory is not reachable — try again later or contact support.', 'failure'],
  };
  var result = document.getElementById('result');
  return {
    /** The text and class of a reason class other than a challenge. */
    outcome: function (r) { return TEXTS[r] || [FAILED, 'failure']; },
    /** "A code was sent to …" or "Your code is on its way …", for codeSent / codePending. */
    sent: function (data) {
      var where = typeof data.destination === 'string' && data.destination ? ' to ' + data.destination : '';
      return data.result === 'codeSent' ? 'A code was sent' + where + '.' : 'Your code is on its way' + where + '.';
    },
    show: function (text, kind) {
      result.textContent = text;
      result.className = kind;
    },
    post: function (url, body) {
      return fetch(url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
        body: body.toString(),
        credentials: 'omit',
      }).then(function (res) { return res.json(); });
    },
    failedCheck: 'The check could not be done — try again.',
  };
})();

(function () {
  var form = document.getElementById('login');
  if (!form) return;
  var auth = window.otpdAuth;
  var pass = document.getElementById('pass');
  // /auth/index3: the OTP has its own field; the check gets password followed by OTP as `pass`
  var otp = document.getElementById('otp');
  var button = document.getElementById('submit');

  function describe(data) {
    var r = data && data.result;
    if (r === 'codeSent' || r === 'codePending') return [auth.sent(data) + ' Enter your password followed by the code.', 'challenge'];
    return auth.outcome(r);
  }

  form.addEventListener('submit', function (event) {
    event.preventDefault();
    var body = new URLSearchParams(new FormData(form));
    if (otp) {
      body.set('pass', pass.value + otp.value);
      body.delete('otp');
    }
    button.disabled = true;
    auth.show('Checking…', 'pending');
    auth.post('/auth/check', body)
      .then(function (data) {
        var d = describe(data);
        auth.show(d[0], d[1]);
      })
      .catch(function () { auth.show(auth.failedCheck, 'failure'); })
      .then(function () {
        pass.value = '';
        if (otp) otp.value = '';
        button.disabled = false;
        pass.focus();
      });
  });
})();
