// Seed files (`/admin/loadtokens`, RFC 6030 PSKC in its three protection modes and OATH CSV):
// every imported token validates with its next OTP; a refused file (bad MAC, wrong password,
// an unsupported algorithm, a bad line, a serial of another type) imports nothing of the file;
// no answer or audit row holds a seed; the admin policy `import` gates the endpoint.
import assert from 'node:assert/strict';
import { createCipheriv, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { hotp, totpStep } from '../../src/otp/hotp.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';

const seeds = { a: randomBytes(20), b: randomBytes(20), c: randomBytes(32), d: randomBytes(20), e: randomBytes(20), f: randomBytes(20) };

function cbc(key: Buffer, plain: Buffer): Buffer {
  const iv = randomBytes(16);
  const c = createCipheriv(key.length === 16 ? 'aes-128-cbc' : 'aes-256-cbc', key, iv);
  return Buffer.concat([iv, c.update(plain), c.final()]);
}

interface PskcKey { serial: string; secret: Buffer; alg?: 'hotp' | 'totp' | 'ocra'; counter?: number; digits?: number; step?: number }

/** A PSKC document written from RFC 6030 (sections 4, 6.1, 6.2), its secrets plain or encrypted with MACs. */
function pskc(keys: PskcKey[], protect: { psk?: Buffer; password?: string; tamper?: boolean; noMac?: boolean } = {}): string {
  let encKey: Buffer | undefined;
  let header = '';
  if (protect.psk) {
    encKey = protect.psk;
    header = '<EncryptionKey><ds:KeyName>Pre-shared-key</ds:KeyName></EncryptionKey>';
  } else if (protect.password) {
    const salt = randomBytes(8);
    encKey = pbkdf2Sync(protect.password, salt, 1000, 16, 'sha1');
    header = `<EncryptionKey><DerivedKey><KeyDerivationMethod Algorithm="http://www.rsasecurity.com/rsalabs/pkcs/schemas/pkcs-5v2-0#pbkdf2">
      <pkcs5:PBKDF2-params><Salt><Specified>${salt.toString('base64')}</Specified></Salt><IterationCount>1000</IterationCount><KeyLength>16</KeyLength><PRF/></pkcs5:PBKDF2-params>
      </KeyDerivationMethod><xenc:ReferenceList><xenc:DataReference URI="#ED"/></xenc:ReferenceList><MKI/></DerivedKey></EncryptionKey>`;
  }
  const macKey = randomBytes(20);
  const aes = encKey && (encKey.length === 16 ? 'aes128-cbc' : 'aes256-cbc');
  if (encKey && !protect.noMac) {
    header += `<MACMethod Algorithm="http://www.w3.org/2000/09/xmldsig#hmac-sha1"><MACKey><xenc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#${aes}"/>
      <xenc:CipherData><xenc:CipherValue>${cbc(encKey, macKey).toString('base64')}</xenc:CipherValue></xenc:CipherData></MACKey></MACMethod>`;
  }
  const secretXml = (secret: Buffer) => {
    if (!encKey) return `<PlainValue>${secret.toString('base64')}</PlainValue>`;
    const raw = cbc(encKey, secret);
    const mac = createHmac('sha1', macKey).update(raw).digest();
    if (protect.tamper) mac[0] ^= 1;
    return `<EncryptedValue><xenc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#${aes}"/><xenc:CipherData><xenc:CipherValue>${raw.toString('base64')}</xenc:CipherValue></xenc:CipherData></EncryptedValue>${protect.noMac ? '' : `<ValueMAC>${mac.toString('base64')}</ValueMAC>`}`;
  };
  const packages = keys.map((k) => `<KeyPackage><DeviceInfo><Manufacturer>Manufacturer</Manufacturer><SerialNo>${k.serial}</SerialNo></DeviceInfo>
    <Key Id="${k.serial}-id" Algorithm="urn:ietf:params:xml:ns:keyprov:pskc:${k.alg ?? 'hotp'}"><Issuer>Issuer</Issuer>
      <AlgorithmParameters><ResponseFormat Length="${k.digits ?? 6}" Encoding="DECIMAL"/></AlgorithmParameters>
      <Data><Secret>${secretXml(k.secret)}</Secret><Counter><PlainValue>${k.counter ?? 0}</PlainValue></Counter>${k.step ? `<TimeInterval><PlainValue>${k.step}</PlainValue></TimeInterval>` : ''}</Data>
    </Key></KeyPackage>`).join('\n');
  return `<?xml version="1.0" encoding="UTF-8"?>
<KeyContainer Version="1.0" xmlns="urn:ietf:params:xml:ns:keyprov:pskc" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" xmlns:xenc="http://www.w3.org/2001/04/xmlenc#" xmlns:pkcs5="http://www.rsasecurity.com/rsalabs/pkcs/schemas/pkcs-5v2-0#">
${header}
${packages}
</KeyContainer>`;
}

/** A multipart/form-data body (LinOTP's upload form). */
function multipart(fields: Record<string, string>, file: string): { payload: Buffer; contentType: string } {
  const boundary = `----otpd${randomBytes(8).toString('hex')}`;
  const parts = Object.entries(fields).map(([k, v]) => `--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`);
  parts.push(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="tokens.xml"\r\nContent-Type: application/octet-stream\r\n\r\n${file}\r\n`);
  return { payload: Buffer.from(`${parts.join('')}--${boundary}--\r\n`), contentType: `multipart/form-data; boundary=${boundary}` };
}

describe('seed files: /admin/loadtokens', () => {
  let t: TestApp;
  const allAnswers: string[] = [];
  const upload = async (fields: Record<string, string>, file: string) => {
    const { payload, contentType } = multipart(fields, file);
    const res = await t.app.inject({ method: 'POST', url: '/admin/loadtokens', payload, headers: { 'content-type': contentType, authorization: `Bearer ${t.apiKey}` } });
    allAnswers.push(res.body);
    return JSON.parse(res.body);
  };
  const check = async (serial: string, pass: string) => (await t.post('/validate/check', { serial, pass })).json.result.value;
  const tokenCount = async () => Number((await t.services.db.kysely.selectFrom('tokens').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirst())!.n);

  before(async () => {
    t = await startTestApp();
  });
  after(async () => {
    for (const body of allAnswers) for (const s of Object.values(seeds)) {
      assert.ok(!body.includes(s.toString('hex')) && !body.includes(s.toString('base64')), 'an answer holds a seed');
    }
    const audit = JSON.stringify(await t.services.db.kysely.selectFrom('audit').selectAll().execute());
    for (const s of Object.values(seeds)) assert.ok(!audit.includes(s.toString('hex')) && !audit.includes(s.toString('base64')), 'the audit holds a seed');
    await t.close();
  });

  test('plain PSKC: HOTP (with its counter) and TOTP tokens validate with their next OTP', async () => {
    const res = await upload({ type: 'pskc' }, pskc([
      { serial: 'PSKCPLAIN1', secret: seeds.a, counter: 5 },
      { serial: 'PSKCTOTP1', secret: seeds.b, alg: 'totp', step: 30, counter: 0 },
    ]));
    assert.equal(res.result.status, true, JSON.stringify(res));
    assert.equal(res.result.value.imported, 2);
    assert.deepEqual(res.detail.created, ['PSKCPLAIN1', 'PSKCTOTP1']);
    assert.equal(await check('PSKCPLAIN1', hotp(seeds.a, 4)), false, 'a counter below the imported one is used up');
    assert.equal(await check('PSKCPLAIN1', hotp(seeds.a, 5)), true);
    const step = totpStep(Date.now(), 30, 0);
    assert.equal(await check('PSKCTOTP1', hotp(seeds.b, step)), true);
  });

  test('pre-shared key PSKC (AES-128-CBC, HMAC-SHA1 MAC): imported with the key, refused without or with a tampered MAC', async () => {
    const psk = randomBytes(16);
    const doc = pskc([{ serial: 'PSKCPSK1', secret: seeds.c, digits: 8 }], { psk });
    const before = await tokenCount();
    const noKey = await upload({ type: 'pskc' }, doc);
    assert.equal(noKey.result.error.code, 2212);
    const wrongKey = await upload({ type: 'pskc', psk: randomBytes(16).toString('hex') }, doc);
    assert.equal(wrongKey.result.error.code, 2210);
    const tampered = await upload({ type: 'pskc', psk: psk.toString('hex') }, pskc([{ serial: 'PSKCPSK1', secret: seeds.c }], { psk, tamper: true }));
    assert.equal(tampered.result.error.code, 2210);
    assert.match(tampered.result.error.message, /ValueMAC does not match/);
    const noMac = await upload({ type: 'pskc', psk: psk.toString('hex') }, pskc([{ serial: 'PSKCPSK1', secret: seeds.c }], { psk, noMac: true }));
    assert.equal(noMac.result.error.code, 2210);
    assert.equal(await tokenCount(), before, 'nothing of a refused file is stored');
    const good = await upload({ type: 'pskc', psk: psk.toString('hex') }, doc);
    assert.equal(good.result.value.imported, 1, JSON.stringify(good));
    assert.equal(await check('PSKCPSK1', hotp(seeds.c, 0, 8)), true);
  });

  test('password-based PSKC (PBKDF2): imported with the password, refused with a wrong one', async () => {
    const doc = pskc([{ serial: 'PSKCPBE1', secret: seeds.d }], { password: 'qwerty-pbkdf2' });
    const wrong = await upload({ type: 'pskc', password: 'not-it' }, doc);
    assert.equal(wrong.result.error.code, 2210);
    const missing = await upload({ type: 'pskc' }, doc);
    assert.equal(missing.result.error.code, 2212);
    const good = await upload({ type: 'pskc', password: 'qwerty-pbkdf2', tokenrealm: 'corp' }, doc);
    assert.equal(good.result.value.imported, 1, JSON.stringify(good));
    assert.equal(await check('PSKCPBE1', hotp(seeds.d, 0)), true);
    const row = await t.services.tokens.repository.bySerial('PSKCPBE1');
    assert.deepEqual(row!.realms, ['corp']);
  });

  test('a file with one bad token stores none of its tokens', async () => {
    const before = await tokenCount();
    const res = await upload({ type: 'pskc' }, pskc([
      { serial: 'GOOD1', secret: seeds.e },
      { serial: 'OCRA1', secret: seeds.e, alg: 'ocra' },
    ]));
    assert.equal(res.result.error.code, 2210);
    assert.match(res.result.error.message, /OCRA1: algorithm .* is not supported/);
    const short = await upload({ type: 'pskc' }, pskc([{ serial: 'GOOD1', secret: seeds.e }, { serial: 'SHORT1', secret: randomBytes(10) }]));
    assert.match(short.result.error.message, /SHORT1: the seed is shorter than 128 bits/);
    assert.equal(await tokenCount(), before);
    assert.equal(await t.services.tokens.repository.bySerial('GOOD1'), undefined);
  });

  test('a document type declaration is refused (no entity expansion)', async () => {
    const res = await upload({ type: 'pskc' }, `<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><KeyContainer Version="1.0">&a;</KeyContainer>`);
    assert.equal(res.result.error.code, 2210);
    assert.match(res.result.error.message, /document type declarations are not accepted/);
  });

  test('OATH CSV: HOTP and TOTP lines; a bad line refuses the file; a second upload keeps what is there', async () => {
    const csv = `# serial, seed, type, otplen, time step\nCSVHOTP1,${seeds.f.toString('hex')},hotp,8\nCSVTOTP1,${seeds.e.toString('hex')},totp,6,60\n`;
    const bad = await t.admin('/admin/loadtokens', { type: 'oathcsv', file: `${csv}CSVBAD1,nothex\n` });
    assert.equal(bad.json.result.error.code, 2210);
    assert.match(bad.json.result.error.message, /line 4 \(CSVBAD1\): the seed is not hex/);
    assert.equal(await t.services.tokens.repository.bySerial('CSVHOTP1'), undefined);
    const good = await t.admin('/admin/loadtokens', { type: 'oathcsv', file: csv });
    allAnswers.push(good.body);
    assert.equal(good.json.result.value.imported, 2, good.body);
    assert.equal(await check('CSVHOTP1', hotp(seeds.f, 0, 8)), true);
    assert.equal(await check('CSVTOTP1', hotp(seeds.e, totpStep(Date.now(), 60, 0))), true);
    const again = await t.admin('/admin/loadtokens', { type: 'oathcsv', file: csv });
    assert.equal(again.json.result.value.imported, 0);
    assert.deepEqual(again.json.detail.kept, ['CSVHOTP1', 'CSVTOTP1']);
    const otherSeed = await t.admin('/admin/loadtokens', { type: 'oathcsv', file: `CSVHOTP1,${randomBytes(20).toString('hex')}\n` });
    assert.match(otherSeed.json.result.error.message, /CSVHOTP1: a token with this serial exists with another seed/);
    const otherType = await t.admin('/admin/loadtokens', { type: 'oathcsv', file: `CSVHOTP1,${seeds.f.toString('hex')},totp\n` });
    assert.match(otherType.json.result.error.message, /exists with type hmac/);
  });

  test('an unknown type is refused; the admin policy import gates the endpoint', async () => {
    const res = await t.admin('/admin/loadtokens', { type: 'aladdin-xml', file: '<x/>' });
    assert.equal(res.json.result.error.code, 2211);
    await t.admin('/system/setPolicy', { name: 'adminshow', scope: 'admin', action: 'show', realm: '*', user: 'admin', client: '' });
    const refused = await t.admin('/admin/loadtokens', { type: 'oathcsv', file: `POL1,${randomBytes(20).toString('hex')}\n` });
    assert.equal(refused.json.result.status, false);
    assert.equal(await t.services.tokens.repository.bySerial('POL1'), undefined);
    await t.admin('/system/setPolicy', { name: 'adminimport', scope: 'admin', action: 'import', realm: '*', user: 'admin', client: '' });
    const allowed = await t.admin('/admin/loadtokens', { type: 'oathcsv', file: `POL1,${randomBytes(20).toString('hex')}\n` });
    assert.equal(allowed.json.result.value.imported, 1, allowed.body);
    await t.admin('/system/delPolicy', { name: 'adminshow,adminimport' });
  });
});
