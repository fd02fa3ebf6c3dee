import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { buildPayload, parsePath, restSmsProvider } from '../../src/delivery/sms/rest.ts';
import { HttpGateway } from '../fixtures/http-gateway.ts';
import { build, never, sms } from './helpers.ts';

describe('RestSMSProvider against a real JSON endpoint', () => {
  let gw: HttpGateway;
  before(async () => {
    gw = await new HttpGateway({
      auth: { type: 'basic', user: 'api', password: 'key' },
      respond: (req) => {
        const to = (req.body as any)?.messages?.[0]?.to?.[0];
        if (to === '+4915100000500') return { status: 502, body: '{}' };
        if (to === '+4915100000400') return { status: 400, body: '{"error":"bad number"}' };
        return { status: 201, body: JSON.stringify({ message_id: 'm-77' }), headers: { 'content-type': 'application/json' } };
      },
    }).start();
  });
  after(() => gw.stop());

  const config = () => ({
    URL: `${gw.url}/v1/sms, http://127.0.0.1:1/unused`,
    PAYLOAD: { from: 'ACME', messages: [{ to: ['<phone>'], body: 'Code: <message>' }] },
    SMS_TEXT_KEY: 'messages[0].body',
    SMS_PHONENUMBER_KEY: 'messages[0].to',
    USERNAME: 'api',
    PASSWORD: 'key',
    HEADERS: { 'X-Tenant': 't1' },
  });

  test('fills the payload template, posts JSON with basic auth, reads the message id', async () => {
    const p = build(restSmsProvider, config());
    const r = await p.send(sms('+4915112345678', '123456'), never());
    assert.deepEqual(r, { kind: 'accepted', providerMessageId: 'm-77' });
    const req = gw.requests.at(-1)!;
    assert.equal(req.path, '/v1/sms');
    assert.equal(req.method, 'POST');
    assert.equal(req.headers['content-type'], 'application/json');
    assert.equal(req.headers['x-tenant'], 't1');
    assert.equal(req.authUser, 'api');
    assert.deepEqual(req.body, { from: 'ACME', messages: [{ to: ['+4915112345678'], body: 'Code: 123456' }] });
  });

  test('5xx is transient, 4xx permanent', async () => {
    const p = build(restSmsProvider, config());
    assert.equal((await p.send(sms('+4915100000500', 'x'), never())).kind, 'transient');
    const r = await p.send(sms('+4915100000400', 'x'), never());
    assert.equal(r.kind, 'permanent');
    assert.equal(r.kind === 'permanent' && r.providerFault, false);
  });

  test('PAYLOAD given as a JSON string; missing required keys are named', () => {
    const p = build(restSmsProvider, { ...config(), PAYLOAD: '{"text": "", "to": ""}', SMS_TEXT_KEY: 'text', SMS_PHONENUMBER_KEY: 'to' });
    assert.ok(p);
    assert.throws(() => build(restSmsProvider, { URL: gw.url }), /config.PAYLOAD: required/);
  });
});

test('payload paths and templates (LinOTP rules)', () => {
  assert.deepEqual(parsePath('a.b[0].c'), ['a', 'b', 0, 'c']);
  assert.deepEqual(buildPayload({ t: 'plain' }, ['t'], ['n'], 'TEXT', '+49'), { t: 'TEXT', n: '+49' });
  assert.deepEqual(buildPayload({ t: 'x <message> y', n: ['tel:<phone>', 'x'] }, ['t'], ['n'], 'T', '+1'), { t: 'x T y', n: ['tel:+1', '+1'] });
  assert.deepEqual(buildPayload({}, ['a', 'b'], ['c', 0], 'T', '+1'), { a: { b: 'T' }, c: ['+1'] });
});
