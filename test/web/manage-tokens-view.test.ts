/**
 * The pure parts of the Tokens pages: LinOTP's token dictionary as the pages show it (owner,
 * status word), the list's GET parameters made safe and turned into /admin/show's, paging
 * counts, which field an API refusal belongs to, /admin/init's parameters from the form (only
 * the chosen type's fields, a generated seed for HOTP/TOTP), and the once-shown secret.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { OtpdError } from '../../src/errors.ts';
import {
  ENROLL_FIELDS, enrollmentSecret, fieldOf, initParams, keptInput, listHref, listQuery, paging, showParams, sortHeader, tokenView,
} from '../../src/web/manage/tokens-view.ts';

const dict = (over: Record<string, unknown> = {}) => ({
  'LinOtp.TokenSerialnumber': 'OATH1', 'LinOtp.TokenType': 'HMAC', 'LinOtp.TokenDesc': 'd', 'LinOtp.TokenInfo': '{\n"hashlib": "sha1",\n"phone": "+4915123456789"\n}',
  'LinOtp.IdResolver': 'files', 'LinOtp.Userid': '1001', 'LinOtp.MaxFail': 10, 'LinOtp.Isactive': true, 'LinOtp.FailCount': 0, 'LinOtp.Count': 7,
  'LinOtp.CreationDate': 'Tue, 01 Dec 2026 11:33:40 GMT', 'LinOtp.LastAuthSuccess': '', 'LinOtp.RealmNames': ['a'], 'User.username': 'alice', ...over,
});

test('a token dictionary: owner, realms, info, status word (disabled wins over locked)', () => {
  const v = tokenView(dict());
  assert.deepEqual([v.serial, v.type, v.typeLabel, v.owner, v.assigned, v.realms, v.counter, v.created, v.lastSuccess], ['OATH1', 'hmac', 'HOTP', 'alice@a', true, ['a'], 7, '2026-12-01T11:33:40.000Z', '']);
  assert.deepEqual(v.info, { hashlib: 'sha1', phone: '+4915123456789' });
  assert.equal(v.status, 'active');
  assert.equal(tokenView(dict({ 'LinOtp.FailCount': 10 })).status, 'locked');
  assert.equal(tokenView(dict({ 'LinOtp.FailCount': 10, 'LinOtp.Isactive': false })).status, 'disabled');
  assert.equal(tokenView(dict({ 'User.username': '' })).owner, 'user id 1001 (files)', 'an owner the user store no longer knows');
  assert.equal(tokenView(dict({ 'User.username': '', 'LinOtp.Userid': '' })).owner, '');
  assert.deepEqual(tokenView(dict({ 'LinOtp.TokenInfo': 'not json' })).info, {});
});

test('list parameters: unknown sort and bad pages fall back; /admin/show gets LinOTP names', () => {
  assert.deepEqual(listQuery({ sort: 'drop table', page: '-3', dir: 'sideways' }), { q: '', realm: '', sort: 'serial', dir: 'asc', page: 1 });
  assert.deepEqual(listQuery({ q: ' alice ', realm: 'A', sort: 'failcount', dir: 'desc', page: '3' }), { q: 'alice', realm: 'A', sort: 'failcount', dir: 'desc', page: 3 });
  assert.deepEqual(listQuery({ q: ['x', 'y'], page: '1e9' }).page, 1, 'a repeated or odd value is ignored');
  const l = listQuery({ q: 'bulk', realm: 'a', sort: 'created', dir: 'desc', page: '2' });
  assert.deepEqual(showParams(l), { filter: 'bulk', viewrealm: 'a', sortby: 'CreationDate', sortdir: 'desc', page: '2', pagesize: '50' });
  assert.equal(listHref(l), '/manage/tokens?q=bulk&realm=a&sort=created&dir=desc&page=2');
  assert.equal(listHref(listQuery({})), '/manage/tokens');
  assert.deepEqual(sortHeader(l, 'created', 'Created'), { label: 'Created', href: '/manage/tokens?q=bulk&realm=a&sort=created', sort: 'descending' });
  assert.deepEqual(sortHeader(l, 'serial', 'Serial'), { label: 'Serial', href: '/manage/tokens?q=bulk&realm=a' });
});

test('paging counts with thousand separators', () => {
  const p = paging(listQuery({ page: '150' }), 10_000, 50);
  assert.deepEqual([p.range, p.pageText, p.prev, p.next], ['7,451–7,500 of 10,000', 'page 150 of 200', '/manage/tokens?page=149', '/manage/tokens?page=151']);
  const last = paging(listQuery({ page: '2' }), 62, 12);
  assert.deepEqual([last.range, last.next], ['51–62 of 62', undefined]);
  assert.equal(paging(listQuery({}), 0, 0).range, '0 of 0');
});

test('an API refusal goes next to the field its message names', () => {
  const e = (message: string, code = 905) => new OtpdError(code, message);
  assert.equal(fieldOf(e("Missing parameter: 'email_address'"), ENROLL_FIELDS), 'email');
  assert.equal(fieldOf(e("Invalid parameter 'phone': not a possible phone number for +49 (wrong number of digits)"), ENROLL_FIELDS), 'phone');
  assert.equal(fieldOf(e("Invalid parameter 'otpkey': longer than 256 characters"), ENROLL_FIELDS), 'password');
  assert.equal(fieldOf(e('user nobody@a not found'), ENROLL_FIELDS), 'user');
  assert.equal(fieldOf(e('You do not have the administrative right for this realm', 410), ENROLL_FIELDS), 'realm');
  assert.equal(fieldOf(e('You do not have the administrative right to init token of type sms', 410), ENROLL_FIELDS), undefined);
  assert.equal(fieldOf(e("Invalid parameter 'hashlib': x"), ENROLL_FIELDS), undefined, 'a parameter the form does not have: the summary only');
});

test('/admin/init parameters: only the chosen type\'s fields, a generated seed for HOTP/TOTP', () => {
  const form = { type: 'hmac', otplen: '8', timestep: '60', phone: '+4915123456789', email: 'a@example.org', password: 'pw', pin: '1234', user: ' alice ', realm: 'a', description: ' d ', serial: '' };
  assert.deepEqual(initParams(form), { type: 'hmac', description: 'd', pin: '1234', user: 'alice', realm: 'a', genkey: '1', otplen: '8' });
  assert.deepEqual(initParams({ ...form, type: 'totp' }), { type: 'totp', description: 'd', pin: '1234', user: 'alice', realm: 'a', genkey: '1', otplen: '8', timeStep: '60' });
  assert.deepEqual(initParams({ ...form, type: 'sms', user: '' }), { type: 'sms', description: 'd', pin: '1234', tokenrealm: 'a', phone: '+4915123456789' });
  assert.deepEqual(initParams({ type: 'email' }), { type: 'email', email_address: '' }, 'an empty address goes to the API, which names the missing parameter');
  assert.deepEqual(initParams({ ...form, type: 'pw', serial: 'PW1' }), { type: 'pw', serial: 'PW1', description: 'd', pin: '1234', user: 'alice', realm: 'a', otpkey: 'pw' });
  assert.deepEqual(keptInput(form), { type: 'hmac', otplen: '8', timestep: '60', phone: '+4915123456789', email: 'a@example.org', user: ' alice ', realm: 'a', description: ' d ', serial: '' });
});

test('the once-shown secret: the otpauth URL, its key, and only the data URL of the QR code', () => {
  const url = 'otpauth://hotp/otpd:alice%40a?secret=JBSWY3DPEHPK3PXP&issuer=otpd&digits=6&algorithm=SHA1&counter=0';
  const shown = enrollmentSecret({ serial: 'OATH1', googleurl: { value: url, img: '<img id="challenge_qrcode" width=250 src="data:image/png;base64,iVBORw0KGgo="/>' } });
  assert.deepEqual(shown, { url, key: 'JBSWY3DPEHPK3PXP', qr: 'data:image/png;base64,iVBORw0KGgo=' });
  assert.equal(enrollmentSecret({ serial: 'PW1' }), undefined);
  assert.equal(enrollmentSecret({ googleurl: { value: 'javascript:alert(1)' } }), undefined);
  assert.equal(enrollmentSecret({ googleurl: { value: url, img: '<img src="javascript:x" onerror="y">' } })?.qr, '');
});
