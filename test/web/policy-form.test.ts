// The policy form's two views of one action string: the fields' values read from it (flags,
// LinOTP's otppin numbers for stored names, lists), the fields written back into it with the
// items no field stands for (`*`, `!remove`) kept in place and values with commas quoted; the
// free text wins when the admin changed it, and an unchanged form sends the string unchanged.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { actionFields, actionFromValues, otherItems, postedAction, valuesFromAction } from '../../src/web/manage/policy-form.ts';

const auth = actionFields('authentication', {
  otppin: { type: 'set', value: ['0', '1', '2', '3', 'token_pin', 'password', 'only_otp', 'ignore_pin'], desc: 'PIN' },
  passthru: { type: 'bool', desc: 'passthru' },
  challenge_response: { type: 'str', desc: 'types' },
  smstext: { type: 'str', desc: 'text' },
});

test('fields from the catalogue: a choice with LinOTP numbers, a flag, check boxes, text', () => {
  assert.deepEqual(auth.map((f) => [f.name, f.input.kind, f.typeLabel]), [['otppin', 'choice', 'choice'], ['passthru', 'flag', 'boolean'], ['challenge_response', 'multi', 'list'], ['smstext', 'text', 'text']]);
  const otppin = auth[0]!.input;
  assert.ok(otppin.kind === 'choice');
  assert.deepEqual(otppin.options.map((o) => o.value), ['0', '1', '2', '3']);
  assert.equal(auth[0]!.defaultText, 'Default when no policy sets it: token_pin.');
  assert.deepEqual(actionFields('nope', { x: {} }), []);
});

test('values read from an action string', () => {
  assert.deepEqual(valuesFromAction("otppin=password, !passthru, challenge_response=SMS email, smstext='a, b'", auth), {
    otppin: '1', passthru: 'no', challenge_response: 'sms email', smstext: 'a, b',
  });
  assert.deepEqual(valuesFromAction('otppin=7, passthru=true', auth), { otppin: '7', passthru: 'yes', challenge_response: '', smstext: '' });
  assert.deepEqual(valuesFromAction("smstext='unterminated", auth), { otppin: '', passthru: '', challenge_response: '', smstext: '' });
});

test('fields written back: other items kept in place, commas quoted, unset fields dropped', () => {
  assert.equal(actionFromValues("forward_x, otppin=1, smstext='a, b'", auth, { otppin: '2', passthru: 'yes', challenge_response: '', smstext: "it's, here" }),
    `forward_x, otppin=2, smstext="it's, here", passthru`);
  assert.equal(actionFromValues('otppin=1, passthru', auth, { otppin: '', passthru: 'no', challenge_response: 'sms', smstext: '' }), '!passthru, challenge_response=sms');
  const admin = actionFields('admin', { remove: { type: 'bool' }, show: { type: 'bool' } });
  assert.deepEqual(otherItems('*, !remove, foo=1', admin), ['*', 'foo=1']);
  assert.equal(actionFromValues('*, !remove', admin, { remove: 'no', show: 'yes' }), '*, !remove, show');
});

test('what a post means: the changed text wins, an unchanged form sends its string as it was', () => {
  const form = (extra: Record<string, string>) => ({ action_base: 'passthru, otppin=1', action: 'passthru, otppin=1', 'a.otppin': '1', 'a.passthru': 'yes', ...extra });
  assert.deepEqual(postedAction(form({}), auth), { action: 'passthru, otppin=1', fromText: false });
  assert.deepEqual(postedAction(form({ 'a.otppin': '3' }), auth), { action: 'passthru, otppin=3', fromText: false });
  assert.deepEqual(postedAction(form({ 'a.challenge_response.sms': 'yes', 'a.challenge_response.email': 'yes' }), auth), { action: 'passthru, otppin=1, challenge_response=sms email', fromText: false });
  assert.deepEqual(postedAction(form({ action: 'otppin=7', 'a.otppin': '3' }), auth), { action: 'otppin=7', fromText: true });
});
