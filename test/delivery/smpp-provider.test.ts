import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import smpp from 'smpp';
import { encodeSms, smppSmsProvider } from '../../src/delivery/sms/smpp.ts';
import type { DeliveryReceipt, Provider } from '../../src/delivery/types.ts';
import { Smsc } from '../fixtures/smsc.ts';
import { build, never, sms } from './helpers.ts';
import { waitFor } from '../helpers/wait.ts';

describe('SMPPSMSProvider against a real SMPP server (smpp package, server mode)', () => {
  let smsc: Smsc;
  const providers: Provider[] = [];
  const make = (extra: Record<string, unknown> = {}, timeoutMs = 2000) => {
    const p = build(
      smppSmsProvider,
      { server: '127.0.0.1', port: String(smsc.port), system_id: 'otpd', password: 'secret', source_addr: 'OTPD', ...extra },
      { timeoutMs, connectTimeoutMs: 1000 },
    );
    providers.push(p);
    return p;
  };
  before(async () => {
    smsc = await new Smsc({
      receipt: { afterMs: 50, stat: 'DELIVRD' },
      submitStatus: (sm) => (sm.destination === '+4915100000011' ? smpp.errors.ESME_RINVDSTADR! : sm.destination === '+4915100000058' ? smpp.errors.ESME_RTHROTTLED! : 0),
    }).start();
  });
  after(async () => {
    for (const p of providers) await p.close?.();
    await smsc.stop();
  });

  test('binds, submits Latin-1 with TON/NPI, returns the message id, and reports the delivery receipt', async () => {
    const p = make({ source_addr_ton: 5, source_addr_npi: 0 });
    const receipts: DeliveryReceipt[] = [];
    p.onReceipt!((r) => receipts.push(r));
    const r = await p.send(sms('+4915112345678', 'Ihr Code: 123456 (gültig 5 min)'), never());
    assert.equal(r.kind, 'accepted');
    const id = r.kind === 'accepted' ? r.providerMessageId : undefined;
    assert.match(id ?? '', /^smsc-\d+$/);
    const sub = smsc.submitted.at(-1)!;
    assert.equal(sub.destination, '+4915112345678');
    assert.equal(sub.source, 'OTPD');
    assert.equal(sub.dataCoding, 3);
    assert.equal(sub.registeredDelivery, 1);
    assert.equal(sub.bytes.toString('latin1'), 'Ihr Code: 123456 (gültig 5 min)');
    assert.deepEqual(smsc.binds.at(-1), { systemId: 'otpd', ok: true });
    await waitFor(() => receipts.length > 0, { what: 'the delivery receipt', timeoutMs: 3000 });
    assert.deepEqual(receipts, [{ providerMessageId: id, status: 'delivered', detail: 'receipt DELIVRD' }]);
  });

  test('long messages are split into concatenated parts; a receipt for any part names the first', async () => {
    const p = make();
    const text = 'A'.repeat(300);
    const before = smsc.submitted.length;
    const r = await p.send(sms('+4915112345678', text), never());
    assert.equal(r.kind, 'accepted');
    const parts = smsc.submitted.slice(before);
    assert.equal(parts.length, 3);
    parts.forEach((part, i) => {
      assert.equal(part.esmClass & 0x40, 0x40);
      assert.deepEqual([...part.bytes.subarray(0, 3)], [0x05, 0x00, 0x03]);
      assert.equal(part.bytes[4], 3);
      assert.equal(part.bytes[5], i + 1);
    });
    assert.equal(parts.map((x) => x.bytes.subarray(6).toString('latin1')).join(''), text);
    assert.equal(r.kind === 'accepted' && r.providerMessageId, parts[0]!.messageId);
  });

  test('text outside Latin-1 goes as UCS2 (data_coding 8)', async () => {
    const p = make();
    const r = await p.send(sms('+4915112345678', 'Код 123456 ✓'), never());
    assert.equal(r.kind, 'accepted');
    const sub = smsc.submitted.at(-1)!;
    assert.equal(sub.dataCoding, 8);
    assert.equal(Buffer.from(sub.bytes).swap16().toString('utf16le'), 'Код 123456 ✓');
  });

  test('error statuses: invalid destination is a permanent refusal of the number, throttling transient', async () => {
    const p = make();
    const bad = await p.send(sms('+4915100000011', 'x'), never());
    assert.equal(bad.kind, 'permanent');
    assert.equal(bad.kind === 'permanent' && bad.providerFault, false);
    assert.match(bad.kind === 'permanent' ? bad.reason : '', /ESME_RINVDSTADR/);
    assert.equal((await p.send(sms('+4915100000058', 'x'), never())).kind, 'transient');
    // the session survives refusals
    assert.equal((await p.send(sms('+4915112345678', 'ok'), never())).kind, 'accepted');
  });

  test('a refused bind is a permanent provider fault; nothing is submitted', async () => {
    const before = smsc.submitted.length;
    const p = make({ password: 'wrong' });
    const r = await p.send(sms('+4915112345678', 'x'), never());
    assert.equal(r.kind, 'permanent');
    assert.equal(r.kind === 'permanent' && r.providerFault, true);
    assert.match(r.kind === 'permanent' ? r.reason : '', /bind refused/);
    assert.equal(smsc.submitted.length, before);
  });

  test('a silent SMSC is cut off at the timeout (transient)', async () => {
    const silent = await new Smsc({ silent: true }).start();
    try {
      const p = build(smppSmsProvider, { server: '127.0.0.1', port: silent.port, system_id: 'otpd', password: 'secret', source_addr: 'X' }, { timeoutMs: 300, connectTimeoutMs: 1000 });
      providers.push(p);
      const t0 = Date.now();
      const r = await p.send(sms('+4915112345678', 'x'), never());
      assert.equal(r.kind, 'transient');
      assert.ok(Date.now() - t0 < 1500);
    } finally {
      await silent.stop();
    }
  });

  test('nothing listening is transient', async () => {
    const p = build(smppSmsProvider, { server: '127.0.0.1', port: 1, system_id: 'a', password: 'b', source_addr: 'c' });
    providers.push(p);
    assert.equal((await p.send(sms('+4915112345678', 'x'), never())).kind, 'transient');
  });
});

test('encodeSms part sizes', () => {
  assert.equal(encodeSms('x'.repeat(140), 'ISO8859-1', 1).length, 1);
  assert.equal(encodeSms('x'.repeat(141), 'ISO8859-1', 1).length, 2);
  assert.equal(encodeSms('x'.repeat(160), 'ascii', 1).length, 1);
  assert.equal(encodeSms('x'.repeat(161), 'ascii', 1).length, 2);
  assert.equal(encodeSms('ж'.repeat(70), 'ISO8859-1', 1).length, 1);
  const parts = encodeSms('😀'.repeat(40), 'UCS2', 9);
  // 4 bytes per emoji, 134 bytes per part: 33 emoji, never half a surrogate pair
  assert.deepEqual(parts.map((p) => (p.bytes.length - 6) / 4), [33, 7]);
});
