import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { deviceSmsProvider } from '../../src/delivery/sms/device.ts';
import { haveBinary } from '../helpers/require.ts';
import { decodeSmsSubmit, FakeModem } from '../fixtures/modem.ts';
import { build, never, sms } from './helpers.ts';

const skip = haveBinary('gnokii', 'gnokii-cli') || haveBinary('socat', 'socat') || haveBinary('python3', 'python3');

describe('DeviceSMSProvider: real gnokii talking to a simulated AT modem on a pseudo-terminal', { skip }, () => {
  const modems: FakeModem[] = [];
  after(async () => {
    for (const m of modems) await m.stop();
  });

  test('success: gnokii exits 0 and the PDU on the wire carries the number and the text', async () => {
    const modem = await new FakeModem('ok').start();
    modems.push(modem);
    const p = build(deviceSmsProvider, { CONFIGFILE: modem.configFile }, { timeoutMs: 20_000 });
    const r = await p.send(sms('+4915112345678', 'Your code 123456'), never());
    assert.deepEqual(r, { kind: 'accepted' });
    const sent = modem.pdus().map(decodeSmsSubmit);
    assert.deepEqual(sent, [{ smsc: '+4915123456780', to: '+4915112345678', text: 'Your code 123456' }]);
    assert.ok(modem.commands().some((c) => c.startsWith('AT+CMGS=')));
  });

  test('two messages queued at once both go out, one after the other', async () => {
    const modem = await new FakeModem('ok').start();
    modems.push(modem);
    const p = build(deviceSmsProvider, { CONFIGFILE: modem.configFile, SMSC: '+4917200000' }, { timeoutMs: 20_000 });
    const [a, b] = await Promise.all([p.send(sms('+4915100000001', 'first'), never()), p.send(sms('+4915100000002', 'second'), never())]);
    assert.equal(a.kind, 'accepted');
    assert.equal(b.kind, 'accepted');
    const sent = modem.pdus().map(decodeSmsSubmit);
    assert.deepEqual(sent.map((s) => [s.to, s.text, s.smsc]), [
      ['+4915100000001', 'first', '+4917200000'],
      ['+4915100000002', 'second', '+4917200000'],
    ]);
  });

  test('the modem refuses the message: gnokii fails, the exit status and its output are the reason', async () => {
    const modem = await new FakeModem('reject').start();
    modems.push(modem);
    const p = build(deviceSmsProvider, { CONFIGFILE: modem.configFile }, { timeoutMs: 20_000 });
    const r = await p.send(sms('+4915112345678', 'x'), never());
    assert.equal(r.kind, 'permanent');
    assert.match(r.kind === 'permanent' ? r.reason : '', /^gnokii exited \d+: SMS Send failed/);
  });

  test('no device: gnokii exits 255 with its error line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'otpd-gnokii-'));
    try {
      const cfg = join(dir, 'gnokiirc');
      writeFileSync(cfg, `[global]\nport = ${join(dir, 'missing-tty')}\nmodel = AT\nconnection = serial\n`);
      const p = build(deviceSmsProvider, { CONFIGFILE: cfg }, { timeoutMs: 20_000 });
      const r = await p.send(sms('+4915112345678', 'x'), never());
      assert.equal(r.kind, 'permanent');
      assert.match(r.kind === 'permanent' ? r.reason : '', /^gnokii exited 255: /);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a number that looks like an option never reaches gnokii; a missing config file is refused at build', async () => {
    const modem = await new FakeModem('ok').start();
    modems.push(modem);
    const p = build(deviceSmsProvider, { CONFIGFILE: modem.configFile });
    const r = await p.send(sms('--help', 'x'), never());
    assert.equal(r.kind, 'permanent');
    assert.deepEqual(modem.commands(), []);
    assert.throws(() => build(deviceSmsProvider, { CONFIGFILE: '/nonexistent/gnokiirc' }), /CONFIGFILE: cannot read/);
  });
});
