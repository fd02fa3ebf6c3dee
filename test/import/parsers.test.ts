// The seed-file readers and the multipart splitter are pure: malformed input is refused with a
// clear message (line numbers, element names), never half-read.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseMultipart } from '../../src/api/multipart.ts';
import { isLinotpPinHash, linotpPinMatches, parseLinotpEncKey } from '../../src/crypto/linotp.ts';
import { parseOathCsv } from '../../src/import/seedfiles/oathcsv.ts';
import { parseXml } from '../../src/import/seedfiles/xml.ts';

test('XML: namespaces dropped, entities decoded, CDATA kept, malformed and DTD refused', () => {
  const root = parseXml('<?xml version="1.0"?><!-- c --><p:A x="1&amp;2"><p:B>a &lt;b&gt; &#65;</p:B><C><![CDATA[<raw>]]></C><D/></p:A>');
  assert.equal(root.name, 'A');
  assert.equal(root.attrs.x, '1&2');
  assert.deepEqual(root.children.map((c) => [c.name, c.text]), [['B', 'a <b> A'], ['C', '<raw>'], ['D', '']]);
  assert.throws(() => parseXml('<A><B></A>'), /does not match/);
  assert.throws(() => parseXml('<!DOCTYPE A><A/>'), /document type declarations are not accepted/);
  assert.throws(() => parseXml('<A>&foo;</A>'), /unknown entity/);
  assert.throws(() => parseXml('<A/><B/>'), /more than one root/);
});

test('OATH CSV: defaults, comments, and a bad line named by its number', () => {
  const t = parseOathCsv('# c\n\nS1,3132333435363738393031323334353637383930\nS2, 3132333435363738393031323334353637383930 , totp, 8, 60\n');
  assert.deepEqual(t.map((x) => [x.serial, x.type, x.otplen, x.timeStep]), [['S1', 'hmac', 6, undefined], ['S2', 'totp', 8, 60]]);
  assert.throws(() => parseOathCsv('S1,00\nS2,xyz\n'), /line 2 \(S2\): the seed is not hex/);
  assert.throws(() => parseOathCsv('S1,00,ocra\n'), /type 'ocra' is not supported/);
  assert.throws(() => parseOathCsv('S1,00,hotp,6,30\n'), /a time step for an HOTP token/);
  assert.throws(() => parseOathCsv('# only a comment\n'), /no token/);
});

test('multipart: fields become parameters, files are kept aside (and are parameters too while they fit one); malformed bodies refused', () => {
  const body = Buffer.from('--XX\r\nContent-Disposition: form-data; name="type"\r\n\r\npskc\r\n--XX\r\nContent-Disposition: form-data; name="file"; filename="t.xml"\r\n\r\n<a/>\r\nline2\r\n--XX--\r\n');
  const parsed = parseMultipart(body, 'multipart/form-data; boundary=XX');
  // a policy file upload (/system/importPolicy) reads `file` like a form field
  assert.deepEqual(parsed.fields, { type: 'pskc', file: '<a/>\r\nline2' });
  const big = 'x'.repeat(300 * 1024);
  const large = parseMultipart(Buffer.from(`--XX\r\nContent-Disposition: form-data; name="file"; filename="big.xml"\r\n\r\n${big}\r\n--XX--\r\n`), 'multipart/form-data; boundary=XX');
  assert.deepEqual(large.fields, {}, 'a file larger than a parameter is only a file');
  assert.equal(large.files.get('file')?.content.length, big.length);
  assert.equal(parsed.files.get('file')?.content.toString(), '<a/>\r\nline2');
  assert.throws(() => parseMultipart(body, 'multipart/form-data'), /without a boundary/);
  assert.throws(() => parseMultipart(Buffer.from('--XX\r\nContent-Disposition: form-data; name="a"\r\n\r\nnever ends'), 'multipart/form-data; boundary=XX'), /ends inside a part/);
});

test('LinOTP PIN hash: SHA-256 over the PIN and the IV (a value computed with sha256sum)', () => {
  // SHA-256("pin" || 16 zero bytes), computed once with `printf 'pin' ; head -c16 /dev/zero` | sha256sum
  const iv = '00'.repeat(16);
  const hash = 'd8c5c03e1a112261b6e590a0626a6b8f70c0a7a142f9da9459ed5a0946919e7a';
  assert.equal(isLinotpPinHash(iv, hash), true);
  assert.equal(linotpPinMatches('pin', iv, hash), true);
  assert.equal(isLinotpPinHash('abcd', hash), false);
  assert.equal(linotpPinMatches('other', iv, hash), false);
  assert.throws(() => parseLinotpEncKey(Buffer.alloc(64)), /at least 96 bytes/);
});
