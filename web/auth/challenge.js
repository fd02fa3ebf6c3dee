// /auth/challenge_response: step 1 posts user, realm and password (or PIN) to /auth/challenge
// (the same check and audit as /validate/check), which triggers the challenge; the page shows
// its message and the masked destination and keeps the transaction id in a hidden field.
// Step 2 posts the OTP with that id to /auth/check and shows the reason class. Served from
// 'self' so the page can keep a strict CSP. Loaded after auth.js, whose window.otpdAuth holds the
// texts of the reason classes, the result line and the post both pages share.
'use strict';
(function () {
  var trigger = document.getElementById('trigger');
  var answer = document.getElementById('answer');
  var user = document.getElementById('user');
  var realm = document.getElementById('realm');
  var pass = document.getElementById('pass');
  var send = document.getElementById('send');
  var challenge = document.getElementById('challenge');
  var transactionid = document.getElementById('transactionid');
  var otp = document.getElementById('otp');
  var submit = document.getElementById('submit');
  var restart = document.getElementById('restart');
  var auth = window.otpdAuth;
  var show = auth.show;
  var post = auth.post;

  function who() {
    var body = new URLSearchParams();
    body.set('user', user.value);
    if (realm) body.set('realm', realm.value);
    return body;
  }

  /** Step 2: the challenge's message and destination shown, the transaction id kept hidden. */
  function askForCode(data) {
    challenge.textContent = typeof data.message === 'string' ? data.message : '';
    transactionid.value = data.transactionid;
    user.readOnly = true;
    if (realm) realm.disabled = true;
    pass.value = '';
    send.disabled = true;
    answer.hidden = false;
    show(auth.sent(data) + ' Enter it below.', 'challenge');
    otp.focus();
  }

  function startOver() {
    answer.hidden = true;
    transactionid.value = '';
    challenge.textContent = '';
    otp.value = '';
    user.readOnly = false;
    if (realm) realm.disabled = false;
    send.disabled = false;
    pass.focus();
  }

  trigger.addEventListener('submit', function (event) {
    event.preventDefault();
    var body = who();
    body.set('pass', pass.value);
    send.disabled = true;
    show('Checking…', 'pending');
    post('/auth/challenge', body)
      .then(function (data) {
        var r = data && data.result;
        if ((r === 'codeSent' || r === 'codePending') && typeof data.transactionid === 'string') return askForCode(data);
        var d = auth.outcome(r);
        show(d[0], d[1]);
        pass.value = '';
        send.disabled = false;
        pass.focus();
      })
      .catch(function () {
        show(auth.failedCheck, 'failure');
        send.disabled = false;
      });
  });

  answer.addEventListener('submit', function (event) {
    event.preventDefault();
    var body = who();
    body.set('pass', otp.value);
    body.set('transactionid', transactionid.value);
    submit.disabled = true;
    show('Checking…', 'pending');
    post('/auth/check', body)
      .then(function (data) {
        var r = data && data.result;
        var d = auth.outcome(r);
        show(d[0], d[1]);
        if (r === 'ok') {
          startOver();
          user.focus();
        }
      })
      .catch(function () { show(auth.failedCheck, 'failure'); })
      .then(function () {
        otp.value = '';
        submit.disabled = false;
        if (!answer.hidden) otp.focus();
      });
  });

  restart.addEventListener('click', function () {
    startOver();
    show('', '');
  });
})();
