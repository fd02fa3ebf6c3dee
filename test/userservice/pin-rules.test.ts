// pinProblem (userservice/rights.ts): the selfservice otp_pin_minlength / otp_pin_maxlength /
// otp_pin_contents rules that /userservice/setpin and enroll's `pin` obey. Without a sign every
// named group is needed, `+` needs one of them, `-` forbids them all; lengths count characters.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pinProblem } from '../../src/userservice/rights.ts';

test('no rules: every PIN passes, the empty one too', () => {
  for (const pin of ['', '1', 'x'.repeat(200)]) assert.equal(pinProblem(pin, {}), undefined);
});

test('lengths: minlength and maxlength, counted in characters, not bytes or UTF-16 units', () => {
  assert.equal(pinProblem('abc', { min: 4 }), 'at least 4 characters');
  assert.equal(pinProblem('abcd', { min: 4 }), undefined);
  assert.equal(pinProblem('abcdefghi', { max: 8 }), 'at most 8 characters');
  assert.equal(pinProblem('abcdefgh', { max: 8 }), undefined);
  assert.equal(pinProblem('äöü😀', { min: 4, max: 4 }), undefined, 'four characters, more bytes and UTF-16 units');
  assert.equal(pinProblem('😀😀😀', { min: 4 }), 'at least 4 characters');
  // LinOTP: a maxlength of 0 is no limit
  assert.equal(pinProblem('x'.repeat(50), { max: 0 }), undefined);
  // minlength is checked before maxlength and contents
  assert.equal(pinProblem('a', { min: 2, max: 1, contents: 'n' }), 'at least 2 characters');
});

test('contents without a sign: one character of every named group', () => {
  assert.equal(pinProblem('abc123', { contents: 'cn' }), undefined);
  assert.equal(pinProblem('abcdef', { contents: 'cn' }), 'it needs digits');
  assert.equal(pinProblem('123456', { contents: 'cn' }), 'it needs letters');
  assert.equal(pinProblem('abc123', { contents: 'cns' }), 'it needs special characters');
  assert.equal(pinProblem('abc123!', { contents: 'cns' }), undefined);
  assert.equal(pinProblem('abc123!', { contents: 'u' }), 'it needs upper-case letters');
  assert.equal(pinProblem('Abc', { contents: 'u' }), undefined);
  assert.equal(pinProblem('abc', { contents: 'o' }), 'it needs other characters');
  assert.equal(pinProblem('abcä', { contents: 'o' }), undefined, 'ä is none of letters (ASCII), digits, specials');
  assert.equal(pinProblem('1', { contents: 'sn' }), 'it needs special characters');
  assert.equal(pinProblem('', { contents: 'cn' }), 'it needs letters and digits');
});

test('contents with +: one character of any named group', () => {
  assert.equal(pinProblem('abcdef', { contents: '+ns' }), 'at least one of: digits, special characters');
  assert.equal(pinProblem('abc1', { contents: '+ns' }), undefined);
  assert.equal(pinProblem('abc#', { contents: '+ns' }), undefined);
});

test('contents with -: none of the named groups', () => {
  assert.equal(pinProblem('123456', { contents: '-cs' }), undefined);
  assert.equal(pinProblem('12a456', { contents: '-cs' }), 'no letters');
  assert.equal(pinProblem('1a#', { contents: '-cs' }), 'no letters or special characters');
  // every ASCII special counts: the ranges !-/ :-@ [-` {-~
  for (const ch of '!/:@[`{~ ') {
    const want = ch === ' ' ? undefined : 'no special characters';
    assert.equal(pinProblem(`12${ch}`, { contents: '-s' }), want, JSON.stringify(ch));
  }
});

test('rules of the wrong type or unknown group letters are ignored, not crashes', () => {
  assert.equal(pinProblem('a', { min: '5', max: true, contents: 7 }), undefined);
  assert.equal(pinProblem('a', { contents: 'xyz' }), undefined);
});
