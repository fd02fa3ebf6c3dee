// The runtime config catalogue (src/config/catalogue.ts) is the one place a key's type, bounds,
// default and secrecy are decided: every default fits its own entry, the bounds are the token
// limits, the secret flags agree with what config/secrets.ts encrypts and censors, and every key
// a call site in src/ reads by name has exactly one entry.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Type } from 'typebox';
import { CONFIG, FAMILIES, configDefaults, exact, lookup, specDecode, specProblem, type ConfigSpec } from '../../src/config/catalogue.ts';
import { LEGACY_PROVIDER_CONFIG, isCensoredWhole, isEncryptedEntry, isSecretKey } from '../../src/config/secrets.ts';
import { decode, isNumeric, isSecretSchema } from '../../src/config/values.ts';
import { TOKEN_TYPES } from '../../src/policy/catalogue.ts';
import { LIMITS } from '../../src/tokens/limits.ts';

const entries = Object.entries(CONFIG) as [string, ConfigSpec][];

test('every default fits its own entry (type, bounds, extra rule)', () => {
  for (const [key, s] of entries) {
    if (s.default === undefined) continue;
    assert.equal(s.refused, undefined, `${key}: a refused key has no default`);
    assert.equal(specProblem(s, s.default), null, `${key}=${s.default}`);
  }
});

test('numbers, booleans and choices have a default (their typed readers never answer "unset")', () => {
  for (const [key, s] of entries) {
    if (s.refused) continue;
    if (isNumeric(s.type) || Type.IsBoolean(s.type) || Type.IsArray(s.type) || Array.isArray((s.type as { enum?: unknown }).enum)) {
      assert.notEqual(s.default, undefined, key);
    }
  }
});

test('integers have bounds, and the token defaults are bounded by the token limits', () => {
  for (const [key, s] of entries) {
    if (!Type.IsInteger(s.type)) continue;
    const { minimum, maximum } = s.type as { minimum?: number; maximum?: number };
    assert.ok(typeof minimum === 'number' && typeof maximum === 'number' && minimum <= maximum, key);
    assert.equal(specProblem(s, String(minimum)), null, `${key} minimum`);
    assert.equal(specProblem(s, String(maximum)), null, `${key} maximum`);
    assert.match(specProblem(s, String(maximum + 1)) ?? '', /must be between/, `${key} maximum + 1`);
    if (minimum > 0) assert.match(specProblem(s, String(minimum - 1)) ?? '', /must be between/, `${key} minimum - 1`);
    assert.equal(specProblem(s, '-1'), 'not an integer', key);
    assert.equal(specProblem(s, '1.5'), 'not an integer', key);
  }
  const max = (k: keyof typeof CONFIG) => (CONFIG[k].type as { maximum?: number }).maximum;
  const bounds = (k: keyof typeof CONFIG) => [(CONFIG[k].type as { minimum?: number }).minimum, max(k)];
  assert.equal(max('DefaultMaxFailCount'), LIMITS.maxMaxFail);
  assert.equal(max('AccountMaxFail'), LIMITS.maxMaxFail);
  assert.equal(max('DefaultCountWindow'), LIMITS.maxCountWindow);
  assert.equal(max('DefaultSyncWindow'), LIMITS.maxSyncWindow);
  assert.equal(max('totp.timeWindow'), LIMITS.maxTotpWindowSteps);
  // the bounds that disagreed before the catalogue: setConfig's (documented) ones won
  assert.deepEqual(bounds('DeliveryWaitMs'), [100, 60_000]);
  assert.deepEqual(bounds('DeliveryPollMs'), [100, 60_000]);
});

test('values decode by type: digits, LinOTP booleans, comma lists, choices', () => {
  assert.deepEqual(decode(CONFIG.DefaultOtpLen.type, '8'), { ok: true, value: 8 });
  for (const t of ['True', 'true', '1', 'yes', 'ON']) assert.deepEqual(decode(CONFIG.PrependPin.type, t), { ok: true, value: true }, t);
  for (const f of ['False', 'false', '0', 'no', 'off']) assert.deepEqual(decode(CONFIG.PrependPin.type, f), { ok: true, value: false }, f);
  for (const bad of ['maybe', '', 'truee']) assert.equal(specProblem(CONFIG.PrependPin, bad), 'use True or False', bad);
  assert.deepEqual(decode(CONFIG.DeliveryAllowedHosts.type, ' a.example.com, ,*.b.example.com '), { ok: true, value: ['a.example.com', '*.b.example.com'] });
  assert.deepEqual(specDecode(CONFIG['totp.timeStep'], '60'), { ok: true, value: 60 });
  assert.equal(specProblem(CONFIG['totp.timeStep'], '45'), 'use 30 or 60');
  assert.equal(specProblem(CONFIG['hotp.hashlib'], 'md5'), 'use sha1, sha256 or sha512');
  assert.match(specProblem(CONFIG.DeliveryLimitPerUser, 'lots') ?? '', /count\/seconds/);
  assert.equal(specProblem(CONFIG.DeliveryLimitPerUser, 'off'), null);
  assert.match(specProblem(CONFIG.RadiusReplyAttributes, "{'Class': 'x'}") ?? '', /invalid JSON/);
  assert.match(specProblem(CONFIG.RadiusReplyAttributes, '{"Class": 5}') ?? '', /attribute name to template string/);
  assert.equal(specProblem(CONFIG.mayOverwriteClient, '127.0.0.1, ::1'), null);
  assert.equal(specProblem(CONFIG.mayOverwriteClient, '127.0.0.1, proxy'), 'not an IP address: proxy');
  assert.equal(specProblem(CONFIG.DeliveryDefaultCountry, 'DE'), null);
  assert.match(specProblem(CONFIG.DeliveryDefaultCountry, 'XX') ?? '', /ISO country/);
  assert.match(specProblem(CONFIG.DeliveryBlockedPrefixes, '+4990, +44 870') ?? '', /\+44 870/);
  assert.match(specProblem(CONFIG.DefaultSyncWindow, 'x'.repeat(5000)) ?? '', /longer than 4096/);
});

test('settings otpd does not act on are refused, not stored: AutoResync, AutoResyncTimeout, the always-on switches', () => {
  assert.match(specProblem(CONFIG.AutoResync, 'True') ?? '', /does not resynchronise/);
  assert.equal(specProblem(CONFIG.AutoResync, 'False'), null);
  assert.ok(CONFIG.AutoResyncTimeout.refused);
  assert.equal(specProblem(CONFIG.AutoResyncTimeout, '240'), CONFIG.AutoResyncTimeout.refused);
  assert.ok(specProblem(CONFIG.DefaultResetFailCount, 'False'));
  assert.ok(specProblem(CONFIG.policy_action_validation, 'False'));
});

test('secret flags: the legacy provider JSON is secret by the catalogue, every other named key by neither flag nor name', () => {
  for (const key of Object.keys(LEGACY_PROVIDER_CONFIG)) {
    assert.ok(isSecretSchema(exact(key)!.type), key);
    assert.ok(isEncryptedEntry(key, ''), `${key} stored encrypted`);
    assert.equal(isCensoredWhole(key, ''), false, `${key} shows its non-secret fields`);
  }
  for (const [key, s] of entries) {
    assert.equal(isSecretKey(key), isSecretSchema(s.type), key);
    if (isSecretSchema(s.type)) assert.equal(s.default, undefined, `${key}: a secret has no default to show`);
  }
  assert.ok(Object.keys(configDefaults()).every((k) => !isSecretKey(k)));
  // keys matched only by a pattern keep the name-based detection
  for (const key of ['smtp.password', 'ldapresolver.BINDPW.corp', 'rt.secret', 'client_secret', 'smtp.token']) {
    assert.ok(lookup(key), `${key} is accepted`);
    assert.ok(isSecretKey(key) && isCensoredWhole(key, ''), key);
  }
  for (const key of ['ldapresolver.LDAPURI.corp', 'DeliveryDefaultCountry.paris', 'SMS_CHALLENGE_PROMPT']) assert.equal(isSecretKey(key), false, key);
  assert.ok(isEncryptedEntry('DefaultOtpLen', 'password'), 'type=password encrypts any entry');
});

test('families: each key of a family matches it, none matches a key the catalogue has by name, unknown keys match nothing', () => {
  for (const t of TOKEN_TYPES) assert.ok(lookup(`${t.toUpperCase()}_CHALLENGE_PROMPT`), t);
  assert.equal(lookup('FOO_CHALLENGE_PROMPT'), undefined);
  assert.ok(lookup('DeliveryDefaultCountry.paris'));
  for (const key of Object.keys(CONFIG)) assert.deepEqual(FAMILIES.filter((f) => f.matches(key)).map((f) => f.key), [], key);
  for (const key of ['multi.a', 'DeliveryLimitPerPlanet', 'linotp.errors', 'OATHTokenSupport', 'defaultmaxfailcount']) assert.equal(lookup(key), undefined, key);
});

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../../src');
const sources = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));

test('every key a call site in src/ reads by name has an entry (typed readers are checked by the compiler too)', () => {
  const read = /\bconfig\.(?:get|getInt|has|shown|number|bool|string|list|value)\(\s*['`]([^'`$]+)['`]/g;
  const seen = new Set<string>();
  for (const file of sources(SRC)) for (const m of readFileSync(file, 'utf8').matchAll(read)) seen.add(m[1]!);
  assert.ok(seen.size > 30, `only ${seen.size} keys found`);
  for (const key of seen) assert.ok(lookup(key), `${key} is read but has no catalogue entry`);
});
