// Policy endpoints under /system: LinOTP's response shapes (spec 1.5, linotp-observed.md),
// typed validation, export/import, the simulator, and system-scope authorisation.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { Errors } from '../../src/errors.ts';
import { parsePolicyFile } from '../../src/policy/policyfile.ts';

describe('policy API', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp();
  });
  after(async () => t.close());

  test('setPolicy and getPolicy answer exactly as LinOTP 3.4.4 did', async () => {
    const set = await t.admin('/system/setPolicy', {
      name: 'autoenroll_email', scope: 'enrollment', action: 'autoenrollment=email', realm: 'myrealm', user: '*', client: '*', active: 'True',
    });
    assert.equal(set.status, 200);
    assert.ok(
      set.body.includes(
        '"value": {\n         "setPolicy autoenroll_email": {\n            "action": true,\n            "scope": true,\n            "realm": true,\n            "user": true,\n            "time": true,\n            "client": true,\n            "active": true\n         }\n      }',
      ),
      set.body,
    );
    await t.admin('/system/setPolicy', { name: 'otppin_userpw', scope: 'authentication', action: 'otppin=1', realm: 'myrealm', user: '*', client: '*', active: 'True' });
    const get = await t.admin('/system/getPolicy', {});
    assert.ok(
      get.body.includes(`"value": {
         "autoenroll_email": {
            "action": "autoenrollment=email",
            "scope": "enrollment",
            "realm": "myrealm",
            "user": "*",
            "time": "* * * * * *;",
            "client": "*",
            "active": "True",
            "name": "autoenroll_email"
         },
         "otppin_userpw": {
            "action": "otppin=1",
            "scope": "authentication",
            "realm": "myrealm",
            "user": "*",
            "time": "* * * * * *;",
            "client": "*",
            "active": "True",
            "name": "otppin_userpw"
         }
      }`),
      get.body,
    );
    // the policy is live for validation at once
    assert.equal(t.services.policies.value('authentication', 'otppin', { login: 'bob', realm: 'myrealm' }), 'password');
  });

  test('setPolicy refuses unknown actions and wrongly typed values, naming the action', async () => {
    const cases: [Record<string, string>, number, RegExp][] = [
      [{ name: 'x', scope: 'enrollment', action: 'autoenrollment=hmac', realm: '*' }, 2012, /ERR2012: action 'autoenrollment'.*'hmac'/],
      [{ name: 'x', scope: 'authentication', action: 'otppin=7', realm: '*' }, 2012, /action 'otppin'.*'7'/],
      [{ name: 'x', scope: 'authentication', action: 'passonnotoken', realm: '*' }, 2012, /did you mean 'passOnNoToken'/],
      [{ name: 'x', scope: 'selfish', action: 'passthru', realm: '*' }, 2012, /unknown scope 'selfish'/],
      [{ name: 'x', scope: 'authentication', action: 'passthru', realm: '*', client: '10.0.0.0/40' }, 2012, /'10.0.0.0\/40' is not an IP/],
      [{ name: 'x-y', scope: 'authentication', action: 'passthru', realm: '*' }, 2012, /invalid policy name/],
      [{ name: 'x', scope: 'authentication', action: 'passthru' }, 905, /Missing parameter: 'realm'/],
      [{ scope: 'authentication', action: 'passthru', realm: '*' }, 905, /Missing parameter: 'name'/],
    ];
    for (const [form, code, message] of cases) {
      const res = await t.admin('/system/setPolicy', form);
      assert.equal(res.json.result.status, false, JSON.stringify(form));
      assert.equal(res.json.result.error.code, code, JSON.stringify(form));
      assert.match(res.json.result.error.message, message);
    }
    assert.equal(t.services.policies.list({ name: 'x', includeInactive: true }).length, 0);
    // GET is refused for a state change
    const get = await t.app.inject({ method: 'GET', url: '/system/setPolicy?name=x&scope=admin&action=show&realm=*', headers: { authorization: `Bearer ${t.apiKey}` } });
    assert.equal(get.statusCode, 404);
  });

  test('getPolicy filters, display_inactive and export=true', async () => {
    await t.admin('/system/setPolicy', { name: 'lab_passthru', scope: 'authentication', action: 'passthru', realm: 'lab', user: 'carol, dave', active: 'False' });
    await t.admin('/system/setPolicy', { name: 'helpdesk', scope: 'admin', action: 'show, reset', realm: 'myrealm, lab', user: 'hd*' });
    const names = async (form: Record<string, string>) => Object.keys((await t.admin('/system/getPolicy', form)).json.result.value).sort();
    assert.deepEqual(await names({ scope: 'admin' }), ['helpdesk']);
    assert.deepEqual(await names({ realm: 'LAB' }), ['helpdesk']);
    assert.deepEqual(await names({ realm: 'lab', display_inactive: 'true' }), ['helpdesk', 'lab_passthru']);
    assert.deepEqual(await names({ name: 'helpdesk,otppin_userpw' }), ['helpdesk', 'otppin_userpw']);
    assert.deepEqual(await names({ action: 'otppin' }), ['otppin_userpw']);
    assert.deepEqual(await names({ user: 'carol', display_inactive: 'true', scope: 'authentication' }), ['lab_passthru', 'otppin_userpw']);
    const inactive = (await t.admin('/system/getPolicy', { name: 'lab_passthru', display_inactive: 'true' })).json.result.value.lab_passthru;
    assert.equal(inactive.active, 'False');

    const exp = await t.app.inject({ method: 'GET', url: '/system/getPolicy?export=true&display_inactive=true', headers: { authorization: `Bearer ${t.apiKey}` } });
    assert.equal(exp.statusCode, 200);
    assert.match(String(exp.headers['content-type']), /^text\/plain/);
    assert.equal(exp.headers['content-disposition'], 'attachment; filename="policy.cfg"');
    const parsed = parsePolicyFile(exp.body);
    assert.deepEqual(parsed.map((p) => p.name).sort(), ['autoenroll_email', 'helpdesk', 'lab_passthru', 'otppin_userpw']);
    assert.deepEqual(parsed.find((p) => p.name === 'lab_passthru'), {
      name: 'lab_passthru', scope: 'authentication', action: 'passthru', realm: 'lab', user: 'carol, dave', client: '*', time: '* * * * * *;', active: 'False',
    });
  });

  test('delPolicy answers with the deleted attribute keys; importPolicy restores from an export', async () => {
    const exported = (await t.app.inject({ method: 'GET', url: '/system/getPolicy?export=true&display_inactive=true', headers: { authorization: `Bearer ${t.apiKey}` } })).body;
    const del = await t.admin('/system/delPolicy', { name: 'helpdesk,missing' });
    assert.deepEqual(del.json.result.value, {
      delPolicy: {
        result: {
          'linotp.Policy.helpdesk.action': true,
          'linotp.Policy.helpdesk.scope': true,
          'linotp.Policy.helpdesk.realm': true,
          'linotp.Policy.helpdesk.user': true,
          'linotp.Policy.helpdesk.time': true,
          'linotp.Policy.helpdesk.client': true,
          'linotp.Policy.helpdesk.active': true,
        },
      },
    });
    assert.deepEqual((await t.admin('/system/delPolicy', { name: 'missing' })).json.result.value, { delPolicy: { result: {} } });
    const bad = await t.admin('/system/delPolicy', { name: 'bad name' });
    assert.equal(bad.json.result.error.code, 8888);
    assert.equal((await t.admin('/system/getPolicy', { name: 'helpdesk' })).json.result.value.helpdesk, undefined);

    const imp = await t.admin('/system/importPolicy', { file: exported });
    assert.equal(imp.json.result.value, 4);
    assert.equal((await t.admin('/system/getPolicy', { name: 'helpdesk' })).json.result.value.helpdesk.action, 'show, reset');
    const broken = await t.admin('/system/importPolicy', { file: '[p1]\nscope = authentication\naction = passthru\n[p2]\nscope = authentication\naction = otppin=9\nrealm = *\n' });
    assert.equal(broken.json.result.value, 1, broken.body);
    assert.deepEqual(broken.json.detail.imported, ['p1']);
    assert.equal(broken.json.detail.refused.length, 1);
    assert.equal(broken.json.detail.refused[0].name, 'p2');
    assert.match(broken.json.detail.refused[0].reason, /action 'otppin'/);
    assert.equal((await t.admin('/system/getPolicy', { name: 'p1' })).json.result.value.p1.action, 'passthru', 'the policy that passed is stored');
    assert.equal((await t.admin('/system/getPolicy', { name: 'p2' })).json.result.value.p2, undefined, 'the refused one is not');
    await t.admin('/system/delPolicy', { name: 'p1' });
    assert.equal((await t.admin('/system/importPolicy', { file: '  ' })).json.result.error.code, Errors.policyFileEmpty.code);
  });

  test('checkPolicy: LinOTP allowed/policy plus the simulation', async () => {
    await t.admin('/system/setPolicy', { name: 'pin_vpn', scope: 'authentication', action: 'otppin=2', realm: 'myrealm', user: '*', client: '10.0.0.0/8' });
    const res = await t.admin('/system/checkPolicy', { user: 'alice', realm: 'myrealm', scope: 'authentication', action: 'otppin', client: '10.1.2.3' });
    const v = res.json.result.value;
    assert.equal(v.allowed, true);
    assert.deepEqual(Object.keys(v.policy), ['pin_vpn']);
    assert.equal(v.policy.pin_vpn.action, 'otppin=2');
    const otppin = v.simulation.actions[0];
    assert.equal(otppin.value, 'only_otp');
    assert.equal(otppin.winner, 'pin_vpn');
    const lost = otppin.explanations.find((e: { policy: string }) => e.policy === 'otppin_userpw');
    assert.equal(lost.outcome, 'outranked');
    assert.match(lost.reason, /client match is \*/);
    // the same answer in plain sentences, beside the structured simulation
    assert.match(v.explanation.actions[0].decision, /^authentication\/otppin is 'only_otp' .* for alice in realm myrealm, from client 10\.1\.2\.3: set by policy pin_vpn\.$/);
    assert.ok(v.explanation.actions[0].details.some((d: string) => d.startsWith('otppin_userpw matches too')), v.explanation.actions[0].details.join('; '));

    const none = await t.admin('/system/checkPolicy', { user: 'alice', realm: 'other', scope: 'authentication', action: 'otppin', client: '10.1.2.3' });
    assert.equal(none.json.result.value.allowed, false);
    assert.deepEqual(none.json.result.value.policy, {});
    assert.equal(none.json.result.value.simulation.actions[0].source, 'default');
    assert.match(none.json.result.value.explanation.actions[0].decision, /^No policy sets authentication\/otppin for alice in realm other, from client 10\.1\.2\.3, so otpd uses its default: 'token_pin'/);
    assert.ok(none.json.result.value.explanation.policies.some((p: { name: string; applies: boolean; text: string }) => p.name === 'pin_vpn' && !p.applies && /realm 'other' is not in 'myrealm'/.test(p.text)));

    const sys = await t.admin('/system/checkPolicy', { user: 'admin', realm: '', scope: 'system', action: 'write', client: '127.0.0.1' });
    assert.deepEqual([sys.json.result.value.allowed, sys.json.result.value.policy], [true, 'No policies in scope system']);
    const missing = await t.admin('/system/checkPolicy', { user: 'alice', realm: 'myrealm', scope: 'authentication', action: 'otppin' });
    assert.equal(missing.json.result.error.code, Errors.missingParameter.code);
    assert.match(missing.json.result.error.message, /'client'/);
  });

  test('getPolicyDef lists the catalogue with LinOTP type names', async () => {
    const res = await t.admin('/system/getPolicyDef', { scope: 'authentication' });
    const defs = res.json.result.value;
    assert.deepEqual(defs.otppin.type, 'set');
    assert.deepEqual(defs.otppin.value, ['0', '1', '2', '3', 'token_pin', 'password', 'only_otp', 'ignore_pin']);
    assert.equal(defs.passthru.type, 'bool');
    assert.equal(defs.forward_server.type, 'str');
    assert.equal(defs.voice_provider, undefined);
    const all = (await t.admin('/system/getPolicyDef', {})).json.result.value;
    assert.equal(all.enrollment.maxtokenSMS.type, 'int');
    assert.equal(all.admin.initHMAC.type, 'bool');
  });

  test('system policies restrict administrators; a lock-out needs enforce=true', async () => {
    const lockout = await t.admin('/system/setPolicy', { name: 'readers', scope: 'system', action: 'read', realm: '*', user: 'auditor' });
    assert.equal(lockout.json.result.error.code, Errors.policyLockout.code);
    assert.equal((await t.admin('/system/setPolicy', { name: 'writers', scope: 'system', action: 'read, write', realm: '*', user: 'admin' })).json.result.status, true);
    assert.equal((await t.admin('/system/setPolicy', { name: 'readers', scope: 'system', action: 'read', realm: '*', user: 'auditor' })).json.result.status, true);
    await t.services.admins.add('auditor', 'auditor-password-1');
    const key = await t.services.admins.createApiKey('auditor', 'tests');
    const asAuditor = (path: string, form: Record<string, string>) => t.post(path, form, { authorization: `Bearer ${key}` });
    assert.equal((await asAuditor('/system/getPolicy', { name: 'writers' })).json.result.status, true);
    const refused = await asAuditor('/system/setPolicy', { name: 'sneaky', scope: 'system', action: 'write', realm: '*', user: 'auditor' });
    assert.equal(refused.json.result.error.code, Errors.notAllowed.code);
    assert.equal((await asAuditor('/system/delPolicy', { name: 'writers' })).json.result.error.code, Errors.notAllowed.code);
    // deleting the last writer policy is a lock-out
    const del = await t.admin('/system/delPolicy', { name: 'writers' });
    assert.equal(del.json.result.error.code, Errors.policyLockout.code);
    assert.equal((await t.admin('/system/delPolicy', { name: 'readers,writers', enforce: 'true' })).json.result.status, true);
  });
});
