// Invariant (issue 10, finding 13): a policy action otpd accepts takes effect. Every action of
// the catalogue is either read by otpd's code (IMPLEMENTED names the line that reads it and the
// test that proves its effect) or refused by /system/setPolicy, /system/importPolicy and
// `otpd policy import` with error 2012 saying otpd does not support it, and then the refused
// policy is not stored (`otpd policy import` stores no other policy of the file either;
// /system/importPolicy stores the others and lists each refused one with its reason). getPolicyDef does
// not offer refused actions and the simulator says they are never in force. A policy stored
// before otpd refused one of its actions is still loaded (dropping it could leave a scope without
// policies, which for admin means "everybody may do everything"), without that action, and the
// log names the policy and the action at start.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import pino from 'pino';
import { loadSettings } from '../../src/config/settings.ts';
import { hotp } from '../../src/otp/hotp.ts';
import { ACTIONS, type ActionSpec, SCOPES, type Scope } from '../../src/policy/catalogue.ts';
import { registerPolicyCommands } from '../../src/policy/cli.ts';
import { PolicyService } from '../../src/policy/service.ts';
import { formatSimulation } from '../../src/policy/simulate.ts';
import { createServices } from '../../src/services.ts';
import { Errors } from '../../src/errors.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { type TestDb, createTestDb } from '../helpers/db.ts';
import { haveBinary } from '../helpers/require.ts';
import { startOobEnv, type OobEnv } from '../oob/harness.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const read = (file: string) => readFileSync(join(ROOT, file), 'utf8');
const THIS = 'test/security/inert-policies.test.ts';

/**
 * Every supported action: [file that reads it, text of the reading line], [test file, title of
 * the test that shows the action taking effect].
 */
const IMPLEMENTED: Record<string, { read: [string, string]; proof: [string, string] }> = {
  'authentication/otppin': { read: ['src/validation/policies.ts', "value('authentication', 'otppin'"], proof: ['test/core/flow.test.ts', 'otppin 1: the directory password + OTP'] },
  'authentication/passthru': { read: ['src/validation/service.ts', "has('authentication', 'passthru'"], proof: ['test/core/flow.test.ts', 'passthru checks the directory password'] },
  'authentication/passOnNoToken': { read: ['src/validation/service.ts', "has('authentication', 'passOnNoToken'"], proof: ['test/core/flow.test.ts', 'passOnNoToken lets anyone without a token in'] },
  'authentication/challenge_response': { read: ['src/validation/policies.ts', "value('authentication', 'challenge_response'"], proof: ['test/oob/challenges.test.ts', 'challenge_response: an HOTP token answers a PIN-only request'] },
  'authentication/smstext': { read: ['src/validation/oob/channels.ts', "value('authentication', 'smstext'"], proof: ['test/oob/challenges.test.ts', 'smstext, request data/message, enforce_smstext'] },
  'authentication/enforce_smstext': { read: ['src/validation/oob/channels.ts', "has('authentication', 'enforce_smstext'"], proof: ['test/oob/challenges.test.ts', 'smstext, request data/message, enforce_smstext'] },
  'authentication/sms_dynamic_mobile_number': { read: ['src/validation/oob/channels.ts', "has('authentication', 'sms_dynamic_mobile_number'"], proof: ['test/oob/challenges.test.ts', 'sms_dynamic_mobile_number and dynamic_email_address use the user store'] },
  'authentication/dynamic_email_address': { read: ['src/validation/oob/channels.ts', "has('authentication', 'dynamic_email_address'"], proof: ['test/oob/challenges.test.ts', 'sms_dynamic_mobile_number and dynamic_email_address use the user store'] },
  'authentication/autosms': { read: ['src/validation/oob/flow.ts', "has('authentication', 'autosms'"], proof: ['test/oob/challenges.test.ts', 'autosms sends the next code right after a successful answer'] },
  'authentication/trigger_sms': { read: ['src/validation/oob/flow.ts', "has('authentication', 'trigger_sms'"], proof: ['test/oob/challenges.test.ts', 'trigger_sms: check_s with serial + challenge sends an SMS without PIN'] },
  'authentication/sms_provider': { read: ['src/validation/oob/channels.ts', "providerAction: 'sms_provider'"], proof: ['test/oob/challenges.test.ts', 'sms_provider: an ordered failover chain'] },
  'authentication/email_provider': { read: ['src/validation/oob/channels.ts', "providerAction: 'email_provider'"], proof: [THIS, 'email_provider: an ordered fail-over chain'] },
  'authentication/emailtext': { read: ['src/validation/oob/channels.ts', "value('authentication', 'emailtext'"], proof: ['test/oob/challenges.test.ts', 'emailtext and emailsubject, EMAIL_CHALLENGE_PROMPT'] },
  'authentication/emailsubject': { read: ['src/validation/oob/channels.ts', "value('authentication', 'emailsubject'"], proof: ['test/oob/challenges.test.ts', 'emailtext and emailsubject, EMAIL_CHALLENGE_PROMPT'] },
  'selfservice/enable': { read: ['src/userservice/rights.ts', "enable: '"], proof: ['test/api/userservice-calls.test.ts', "each token call allowed by its policy"] },
  'selfservice/disable': { read: ['src/userservice/rights.ts', "disable: '"], proof: ['test/api/userservice-calls.test.ts', "each token call allowed by its policy"] },
  'selfservice/delete': { read: ['src/userservice/rights.ts', "delete: '"], proof: ['test/api/userservice-calls.test.ts', "each token call allowed by its policy"] },
  'selfservice/reset': { read: ['src/userservice/rights.ts', "reset: '"], proof: ['test/api/userservice-calls.test.ts', "each token call allowed by its policy"] },
  'selfservice/unassign': { read: ['src/userservice/rights.ts', "unassign: '"], proof: ['test/api/userservice-calls.test.ts', "each token call allowed by its policy"] },
  'selfservice/setOTPPIN': { read: ['src/userservice/rights.ts', "setOTPPIN: '"], proof: ['test/api/userservice-calls.test.ts', "each token call allowed by its policy"] },
  'selfservice/setDescription': { read: ['src/userservice/rights.ts', "setDescription: '"], proof: ['test/api/userservice-calls.test.ts', "each token call allowed by its policy"] },
  'selfservice/resync': { read: ['src/userservice/rights.ts', "resync: '"], proof: ['test/api/userservice-calls.test.ts', "resync with two consecutive HOTP codes moves the counter"] },
  'selfservice/verify': { read: ['src/userservice/rights.ts', "verify: '"], proof: ['test/api/userservice-calls.test.ts', "verify: the OTP of an own token through the validation pipeline"] },
  'selfservice/assign': { read: ['src/userservice/rights.ts', "assign: '"], proof: ['test/api/userservice-calls.test.ts', "assign: an unassigned token of the own realm, proven with a current OTP"] },
  'selfservice/getserial': { read: ['src/userservice/rights.ts', "getserial: '"], proof: ['test/api/userservice-calls.test.ts', "getSerialByOtp: an unassigned token of the own realm only"] },
  'selfservice/history': { read: ['src/userservice/rights.ts', "history: '"], proof: ['test/api/userservice-calls.test.ts', "history: only the own rows (this realm), newest first"] },
  'selfservice/enroll<TYPE>': { read: ['src/userservice/rights.ts', "enrollTOTP: 'enroll an authenticator app (TOTP)'"], proof: ['test/api/userservice-calls.test.ts', "enroll hmac, totp, sms, email: value true with"] },
  'selfservice/otp_pin_minlength': { read: ['src/userservice/rights.ts', "value('selfservice', 'otp_pin_minlength'"], proof: ['test/api/userservice-calls.test.ts', "setpin obeys otp_pin_minlength, otp_pin_maxlength and otp_pin_contents"] },
  'selfservice/otp_pin_maxlength': { read: ['src/userservice/rights.ts', "value('selfservice', 'otp_pin_maxlength'"], proof: ['test/api/userservice-calls.test.ts', "setpin obeys otp_pin_minlength, otp_pin_maxlength and otp_pin_contents"] },
  'selfservice/otp_pin_contents': { read: ['src/userservice/rights.ts', "value('selfservice', 'otp_pin_contents'"], proof: ['test/api/userservice-calls.test.ts', "setpin obeys otp_pin_minlength, otp_pin_maxlength and otp_pin_contents"] },
  'selfservice/mfa_login': { read: ['src/api/userservice.ts', "'mfa_login')"], proof: ['test/security/userservice-mfa.test.ts', "the password alone leaves a pending login that serves nothing"] },
  'selfservice/mfa_passOnNoToken': { read: ['src/api/userservice.ts', "'mfa_passOnNoToken')"], proof: ['test/security/userservice-mfa.test.ts', "mfa_passOnNoToken lets a user without a token in with the password"] },
  'selfservice/mfa_3_fields': { read: ['src/api/userservice.ts', "rights.flag(s, 'mfa_3_fields')"], proof: ['test/api/userservice.test.ts', "pre_context and the portal follow the selfservice policies"] },
  'selfservice/footer_text': { read: ['src/api/userservice.ts', "rights.text(s, 'footer_text')"], proof: ['test/api/userservice.test.ts', "pre_context and the portal follow the selfservice policies"] },
  'selfservice/imprint_url': { read: ['src/api/userservice.ts', "rights.text(s, 'imprint_url')"], proof: ['test/api/userservice.test.ts', "pre_context and the portal follow the selfservice policies"] },
  'selfservice/privacy_notice_url': { read: ['src/api/userservice.ts', "rights.text(s, 'privacy_notice_url')"], proof: ['test/api/userservice.test.ts', "pre_context and the portal follow the selfservice policies"] },
  'authentication/forward_server': { read: ['src/validation/service.ts', "value('authentication', 'forward_server'"], proof: ['test/validation/forward.test.ts', "forward_on_no_token: users without a token here go to the old server"] },
  'authentication/forward_on_no_token': { read: ['src/validation/service.ts', "has('authentication', 'forward_on_no_token'"], proof: ['test/validation/forward.test.ts', "forward_on_no_token: users without a token here go to the old server"] },
  'enrollment/autoenrollment': { read: ['src/enrollment/autoenroll.ts', "value('enrollment', 'autoenrollment'"], proof: ['test/oob/autoenroll.test.ts', 'preference order for users with both, one or neither attribute'] },
  'enrollment/maxtoken': { read: ['src/enrollment/tokens.ts', "value('enrollment', 'maxtoken'"], proof: [THIS, 'maxtoken, maxtoken<TYPE> and tokencount limit /admin/init'] },
  'enrollment/maxtoken<TYPE>': { read: ['src/enrollment/tokens.ts', "value('enrollment', `maxtoken${typeName.toUpperCase()}`"], proof: [THIS, 'maxtoken, maxtoken<TYPE> and tokencount limit /admin/init'] },
  'enrollment/tokencount': { read: ['src/enrollment/tokens.ts', "value('enrollment', 'tokencount'"], proof: [THIS, 'maxtoken, maxtoken<TYPE> and tokencount limit /admin/init'] },
  'authorization/tokentype': { read: ['src/validation/policies.ts', "value('authorization', 'tokentype'"], proof: ['test/security/authorization-token-policies.test.ts', 'tokentype: a token of another type neither authenticates nor is used up'] },
  'authorization/serial': { read: ['src/validation/policies.ts', "value('authorization', 'serial'"], proof: ['test/security/authorization-token-policies.test.ts', 'serial: only tokens whose serial matches authenticate'] },
  'authorization/authorize': { read: ['src/validation/service.ts', "has('authorization', 'authorize'"], proof: ['test/core/flow.test.ts', 'authorize by client: only matching clients may authenticate'] },
  'authorization/setrealm': { read: ['src/validation/service.ts', "value('authorization', 'setrealm'"], proof: [THIS, 'setrealm and detail_on_success change /validate/check'] },
  'authorization/detail_on_success': { read: ['src/api/validate.ts', "has('authorization', 'detail_on_success'"], proof: [THIS, 'setrealm and detail_on_success change /validate/check'] },
  'authorization/detail_on_fail': { read: ['src/api/validate.ts', "has('authorization', 'detail_on_fail'"], proof: ['test/core/flow.test.ts', 'detail_on_fail shows the reason only when the policy allows'] },
  'admin/init<TYPE>': { read: ['src/api/admin.ts', "adminAllowed(ctx.admin!.name, 'admin', `init${type.toUpperCase()}`)"], proof: [THIS, 'every admin right is enforced on its endpoint'] },
  'admin/enable': { read: ['src/api/admin.ts', "countAction('/admin/enable', 'enable'"], proof: [THIS, 'every admin right is enforced on its endpoint'] },
  'admin/disable': { read: ['src/api/admin.ts', "countAction('/admin/disable', 'disable'"], proof: [THIS, 'every admin right is enforced on its endpoint'] },
  'admin/reset': { read: ['src/api/admin.ts', "policy: { scope: 'admin', action: 'reset' }"], proof: [THIS, 'every admin right is enforced on its endpoint'] },
  'admin/set': { read: ['src/api/admin.ts', "policy: { scope: 'admin', action: 'set' }"], proof: [THIS, 'every admin right is enforced on its endpoint'] },
  'admin/resync': { read: ['src/api/admin.ts', "policy: { scope: 'admin', action: 'resync' }"], proof: [THIS, 'every admin right is enforced on its endpoint'] },
  'admin/assign': { read: ['src/api/admin.ts', "policy: { scope: 'admin', action: 'assign' }"], proof: [THIS, 'every admin right is enforced on its endpoint'] },
  'admin/unassign': { read: ['src/api/admin.ts', "policy: { scope: 'admin', action: 'unassign' }"], proof: [THIS, 'every admin right is enforced on its endpoint'] },
  'admin/remove': { read: ['src/api/admin.ts', "policy: { scope: 'admin', action: 'remove' }"], proof: [THIS, 'every admin right is enforced on its endpoint'] },
  'admin/show': { read: ['src/api/admin.ts', "policy: { scope: 'admin', action: 'show' }"], proof: [THIS, 'every admin right is enforced on its endpoint'] },
  'admin/tokenowner': { read: ['src/api/admin.ts', "policy: { scope: 'admin', action: 'tokenowner' }"], proof: [THIS, 'every admin right is enforced on its endpoint'] },
  'admin/import': { read: ['src/api/loadtokens.ts', "policy: { scope: 'admin', action: 'import' }"], proof: ['test/import/seedfiles.test.ts', 'the admin policy import gates the endpoint'] },
  'admin/getserial': { read: ['src/api/helpdesk.ts', "policy: { scope: 'admin', action: 'getserial' }"], proof: [THIS, 'every admin right is enforced on its endpoint'] },
  'admin/copytokenpin': { read: ['src/api/helpdesk.ts', "policy: { scope: 'admin', action: 'copytokenpin' }"], proof: [THIS, 'every admin right is enforced on its endpoint'] },
  'admin/copytokenuser': { read: ['src/api/helpdesk.ts', "policy: { scope: 'admin', action: 'copytokenuser' }"], proof: [THIS, 'every admin right is enforced on its endpoint'] },
  'admin/losttoken': { read: ['src/api/helpdesk.ts', "policy: { scope: 'admin', action: 'losttoken' }"], proof: [THIS, 'every admin right is enforced on its endpoint'] },
  'enrollment/lostTokenPWLen': { read: ['src/enrollment/helpdesk.ts', "value('enrollment', 'lostTokenPWLen'"], proof: ['test/api/helpdesk.test.ts', 'a password replacement: shown once, PIN copied, original disabled, never audited'] },
  'enrollment/lostTokenPWContents': { read: ['src/enrollment/helpdesk.ts', "value('enrollment', 'lostTokenPWContents'"], proof: ['test/api/helpdesk.test.ts', 'a password replacement: shown once, PIN copied, original disabled, never audited'] },
  'enrollment/lostTokenValid': { read: ['src/enrollment/helpdesk.ts', "value('enrollment', 'lostTokenValid'"], proof: ['test/api/helpdesk.test.ts', 'a password replacement: shown once, PIN copied, original disabled, never audited'] },
  'admin/userlist': { read: ['src/api/users.ts', "policy: { scope: 'admin', action: 'userlist' }"], proof: [THIS, 'every admin right is enforced on its endpoint'] },
  'system/read': { read: ['src/api/policy.ts', "const READ = { scope: 'system' as const, action: 'read' }"], proof: ['test/policy/api.test.ts', 'system policies restrict administrators'] },
  'system/write': { read: ['src/api/policy.ts', "const WRITE = { scope: 'system' as const, action: 'write' }"], proof: ['test/policy/api.test.ts', 'system policies restrict administrators'] },
  'audit/view': { read: ['src/api/audit.ts', "policy: { scope: 'audit', action: 'view' }"], proof: [THIS, 'every admin right is enforced on its endpoint'] },
};

const concrete = (a: ActionSpec) => a.family ?? [a.name];
const UNSUPPORTED = ACTIONS.filter((a) => a.status !== 'supported').flatMap((a) => concrete(a).map((name) => ({ spec: a, name })));

/** A well-typed item for the action, so that only "not supported" can refuse it. */
function sampleItem(spec: ActionSpec, name: string): string {
  const t = spec.type;
  switch (t.kind) {
    case 'bool':
      return name;
    case 'int':
      return `${name}=${t.min ?? 1}`;
    case 'set':
      return `${name}=${t.values[0]}`;
    case 'list':
      return `${name}=${t.combos?.[0] ?? t.items[0]}`;
    case 'names':
      return `${name}=p1`;
    case 'string': {
      const v = ['email::mail', 'Ccn', 'cns', '10', 'lab', 'text'].find((x) => !t.check?.(x));
      assert.ok(v, `no sample value for ${name}`);
      return `${name}='${v}'`;
    }
  }
}

function sourceFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir)).flatMap((f) => {
    const path = join(dir, f);
    return statSync(join(ROOT, path)).isDirectory() ? sourceFiles(path) : path.endsWith('.ts') ? [path] : [];
  });
}

describe('the catalogue: every action is read by otpd or refused', () => {
  test('supported actions are exactly the ones with a reading line and a proving test', () => {
    const supported = ACTIONS.filter((a) => a.status === 'supported').map((a) => `${a.scope}/${a.name}`).sort();
    assert.deepEqual(supported, Object.keys(IMPLEMENTED).sort(), 'a supported action needs an IMPLEMENTED entry; an inert one must be unsupported');
    for (const [key, { read: [file, needle], proof: [testFile, title] }] of Object.entries(IMPLEMENTED)) {
      assert.ok(read(file).includes(needle), `${key}: ${file} does not contain ${needle}`);
      assert.ok(read(testFile).includes(title), `${key}: ${testFile} has no test '${title}'`);
    }
  });

  test('no unsupported action is read anywhere in src/ (outside the catalogue and its docs)', () => {
    const files = sourceFiles('src').filter((f) => !/src\/policy\/(catalogue|gen-docs)\.ts$/.test(f));
    const text = files.map((f) => [relative(ROOT, join(ROOT, f)), read(f)] as const);
    for (const { spec, name } of UNSUPPORTED) {
      assert.ok(spec.note && spec.note.length > 10, `${spec.scope}/${name} needs a reason`);
      const esc = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      const reads = [
        new RegExp(`\\.(value|has|anyPolicy)\\(\\s*'${spec.scope}',\\s*'${esc}'`),
        new RegExp(`adminAllowed\\([^)]*'${spec.scope}',\\s*'${esc}'`),
        new RegExp(`scope: '${spec.scope}'( as const)?, action: '${esc}'`),
        ...(spec.scope === 'admin' ? [new RegExp(`countAction\\('[^']*', '${esc}'`)] : []),
      ];
      for (const [file, src] of text) for (const re of reads) assert.doesNotMatch(src, re, `${spec.scope}/${name} is read in ${file}: mark it supported`);
    }
  });
});

describe('policy administration refuses unsupported actions', () => {
  let t: TestApp;
  const rows = async () => (await t.services.db.kysely.selectFrom('policies').select('name').execute()).map((r) => r.name).sort();
  before(async () => {
    t = await startTestApp();
  });
  after(async () => t?.close());

  test('setPolicy: each unsupported action (and its negation) → 2012 "not supported by otpd", nothing stored', async () => {
    assert.ok(UNSUPPORTED.length > 30, `catalogue lists ${UNSUPPORTED.length} unsupported actions`);
    const expected = ['setOTPPIN', 'autoassignment', 'otp_pin_random', 'tokenissuer', 'tokenlabel', 'disable_on_authentication_exceed', 'delete_on_authentication_exceed', 'edit_sms', 'enrollSPASS'];
    for (const name of expected) assert.ok(UNSUPPORTED.some((u) => u.name === name), name);
    for (const scope of ['notification'] as Scope[]) {
      assert.ok(ACTIONS.filter((a) => a.scope === scope).every((a) => a.status === 'unsupported'), scope);
    }
    let i = 0;
    for (const { spec, name } of UNSUPPORTED) {
      const items = spec.type.kind === 'bool' ? [sampleItem(spec, name), `!${name}`] : [sampleItem(spec, name)];
      for (const item of items) {
        // next to a supported action, so the policy is refused for this one item
        const neighbour = spec.scope === 'admin' ? 'show, ' : spec.scope === 'authentication' ? 'passthru, ' : '';
        const form = { name: `inert_${i++}`, scope: spec.scope, action: `${neighbour}${item}`, realm: '*', user: '*', client: '' };
        const res = await t.admin('/system/setPolicy', form);
        assert.equal(res.json.result.status, false, `${spec.scope} ${item}: ${res.body}`);
        assert.equal(res.json.result.error.code, 2012, item);
        assert.equal(
          res.json.result.error.message,
          `ERR2012: action '${name}' (scope ${spec.scope}) is not supported by otpd: ${spec.note}`,
        );
      }
    }
    const star = await t.admin('/system/setPolicy', { name: 'self_all', scope: 'selfservice', action: '*', realm: '*', user: '*' });
    assert.equal(star.json.result.error.code, 2012);
    assert.match(star.json.result.error.message, /action '\*' \(scope selfservice\) is not supported by otpd: each selfservice right is granted by name/);
    assert.deepEqual(await rows(), []);
  });

  test('a concurrent burst of setPolicy with an unsupported action stores nothing', async () => {
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        t.admin('/system/setPolicy', { name: `burst_${i}`, scope: 'enrollment', action: 'maxtoken=2, tokenissuer=corp', realm: '*', user: '*' }),
      ),
    );
    for (const a of answers) assert.equal(a.json.result.error.code, 2012);
    assert.deepEqual(await rows(), []);
  });

  test('importPolicy stores the supported policies of a file and lists every refused one with its reason', async () => {
    const sections = UNSUPPORTED.map(({ spec, name }, i) => `[inert_${i}]\nscope = ${spec.scope}\naction = "${sampleItem(spec, name)}"\nrealm = *\nuser = *\n`);
    const file = `[fine]\nscope = authentication\naction = passthru\nrealm = *\n\n${sections.join('\n')}`;
    const res = await t.admin('/system/importPolicy', { file });
    assert.equal(res.json.result.status, true, res.body);
    assert.equal(res.json.result.value, 1);
    assert.deepEqual(res.json.detail.imported, ['fine']);
    const refused: { name: string; reason: string }[] = res.json.detail.refused;
    assert.equal(refused.length, UNSUPPORTED.length);
    UNSUPPORTED.forEach(({ spec, name }, i) => {
      assert.deepEqual(refused[i], { name: `inert_${i}`, reason: `action '${name}' (scope ${spec.scope}) is not supported by otpd: ${spec.note}` }, `inert_${i} (${name})`);
    });
    assert.deepEqual(await rows(), ['fine'], 'only the supported policy of the file is stored');
    const audit = await t.services.db.kysely.selectFrom('audit').selectAll().where('action', '=', 'system/importPolicy').orderBy('id', 'desc').executeTakeFirstOrThrow();
    assert.equal(audit.success, '0', 'a partial import is audited as not fully done');
    assert.match(audit.info, /^Policies imported: fine; refused: inert_0, inert_1, /);

    const one = await t.admin('/system/importPolicy', { file: '[vpn]\nscope = enrollment\naction = "maxtoken=2, tokenissuer=corp"\n' });
    // nothing of the file could be stored: an error, like setPolicy's
    assert.equal(one.json.result.status, false, one.body);
    assert.equal(one.json.result.error.code, 2012);
    assert.match(one.json.result.error.message, /action 'tokenissuer' \(scope enrollment\) is not supported by otpd: otpd's enrollment URLs always carry the issuer 'otpd'/);
    assert.deepEqual(await rows(), ['fine']);
    await t.admin('/system/delPolicy', { name: 'fine' });
    assert.deepEqual(await rows(), []);
  });

  test('getPolicyDef offers only supported actions, in LinOTP\'s shape', async () => {
    const all = (await t.admin('/system/getPolicyDef', {})).json.result.value;
    assert.deepEqual(Object.keys(all).sort(), [...SCOPES].sort());
    for (const scope of SCOPES) {
      const offered = Object.keys(all[scope]).sort();
      const supported = ACTIONS.filter((a) => a.scope === scope && a.status === 'supported').flatMap(concrete).sort();
      assert.deepEqual(offered, supported, scope);
      for (const def of Object.values(all[scope]) as { type: string; desc: string }[]) {
        assert.ok(['bool', 'int', 'set', 'str'].includes(def.type));
        assert.equal(typeof def.desc, 'string');
      }
    }
    assert.equal(all.selfservice.edit_sms, undefined);
    assert.equal(all.selfservice.enrollSPASS, undefined);
    assert.deepEqual(all.notification, {});
    assert.equal(all.enrollment.tokenissuer, undefined);
    assert.equal(all.admin.setOTPPIN, undefined);
  });

  test('checkPolicy: an unsupported action is never allowed, and the simulation says why', async () => {
    const res = await t.admin('/system/checkPolicy', { user: 'alice', realm: 'corp', scope: 'enrollment', action: 'tokenissuer', client: '10.0.0.1' });
    const v = res.json.result.value;
    assert.equal(v.allowed, false);
    assert.match(v.policy, /action 'tokenissuer' \(scope enrollment\) is not supported by otpd/);
    assert.match(v.simulation.actions[0].unsupported, /always carry the issuer 'otpd'/);
    assert.equal(v.simulation.actions[0].value, undefined);
    // no admin policy exists, so every admin right is allowed, but setOTPPIN guards nothing
    const pin = (await t.admin('/system/checkPolicy', { user: 'admin', realm: '', scope: 'admin', action: 'setOTPPIN', client: '127.0.0.1' })).json.result.value;
    assert.equal(pin.allowed, false);
    assert.match(pin.policy, /not supported by otpd: \/admin\/setPin sets the user PIN of mOTP\/OCRA tokens/);
    assert.equal(pin.simulation.actions[0].admin, undefined);
  });
});

describe('otpd policy import and simulate', () => {
  let db: TestDb;
  let dir: string;
  before(async () => {
    db = await createTestDb('sqlite');
    dir = mkdtempSync(join(tmpdir(), 'otpd-inert-'));
  });
  after(async () => {
    await db?.drop();
    rmSync(dir, { recursive: true, force: true });
  });
  const otpd = async (...args: string[]) => {
    const program = new Command().exitOverride();
    const out: string[] = [];
    registerPolicyCommands(program, async () => {
      const policies = new PolicyService({ db: db.db, logger: pino({ level: 'silent' }) });
      await policies.load();
      return { policies, close: async () => undefined };
    }, (s) => void out.push(s));
    await program.parseAsync(['node', 'otpd', ...args]);
    return out.join('');
  };

  test('import refuses the file and stores nothing; simulate names the action as not supported', async () => {
    const file = join(dir, 'policy.cfg');
    writeFileSync(file, '[admins]\nscope = admin\naction = "show, setOTPPIN"\nuser = hd\n\n[pins]\nscope = authentication\naction = otppin=1\n');
    await assert.rejects(otpd('policy', 'import', file), (e: Error) => {
      assert.match(e.message, /1 of 2 policies refused \(admins\), nothing imported: policy 'admins': action 'setOTPPIN' \(scope admin\) is not supported by otpd/);
      return true;
    });
    assert.equal((await db.db.kysely.selectFrom('policies').selectAll().execute()).length, 0);
    const sim = await otpd('policy', 'simulate', '--scope', 'enrollment', '--action', 'tokenissuer', '--user', 'alice@corp');
    assert.match(sim, /enrollment\/tokenissuer: not supported by otpd, never in force: otpd's enrollment URLs always carry the issuer/);
  });
});

describe('policies stored before otpd refused an action', () => {
  test('at start: loaded without the action, a warning names policy and action, the rest stays in force', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'otpd-inert-start-'));
    try {
      const settings = loadSettings({ OTPD_DATA_DIR: dir, OTPD_LOG_LEVEL: 'silent' }, dir);
      const first = await createServices({ settings, logger: pino({ level: 'silent' }) });
      // rows as an older otpd stored them
      const row = { realm: '*', user: '*', client: '*', time: '* * * * * *;', active: 1 };
      await first.db.kysely.insertInto('policies').values([
        { ...row, name: 'hd_pins', scope: 'admin', action: 'show, setOTPPIN', realm: 'corp', user: 'hd' },
        { ...row, name: 'no_pins', scope: 'admin', action: '!setOTPPIN', user: 'other' },
        { ...row, name: 'vpn', scope: 'enrollment', action: 'maxtoken=2, tokenissuer=corp', client: '10.0.0.0/8' },
        { ...row, name: 'portal', scope: 'selfservice', action: '*, enrollSMS' },
      ]).execute();
      await first.close();

      const lines: { level: number; msg: string; policy?: string; action?: string; scope?: string }[] = [];
      const logger = pino({ level: 'info' }, new Writable({ write(chunk, _enc, cb) { lines.push(JSON.parse(String(chunk))); cb(); } }));
      const services = await createServices({ settings, logger });
      try {
        const warned = lines.filter((l) => l.level === 40 && l.policy).map((l) => `${l.policy}/${l.action}`).sort();
        assert.deepEqual(warned, ['hd_pins/setOTPPIN', 'no_pins/!setOTPPIN', 'portal/*', 'vpn/tokenissuer=corp']);
        const vpn = lines.find((l) => l.policy === 'vpn')!;
        assert.match(vpn.msg, /stored policy 'vpn' \(scope enrollment\) carries the action 'tokenissuer=corp', which otpd does not support: it is NOT in force \(the rest of the policy is\)/);
        assert.equal(lines.filter((l) => /stored policy is invalid/.test(l.msg)).length, 0, 'no policy is dropped');

        const p = services.policies;
        assert.deepEqual(p.list().map((x) => x.name), ['hd_pins', 'no_pins', 'portal', 'vpn']);
        assert.deepEqual(p.adminAllowed('hd', 'admin', 'show'), { allowed: true, realms: ['corp'] });
        // the admin scope still has policies: an administrator nobody granted anything stays denied
        assert.equal(p.adminAllowed('someone', 'admin', 'show').allowed, false);
        assert.equal(p.adminAllowed('other', 'admin', 'show').allowed, false);
        assert.equal(p.value('enrollment', 'maxtoken', { login: 'alice', realm: 'corp', client: '10.1.2.3' }), 2);
        assert.equal(p.value('enrollment', 'maxtoken', { login: 'alice', realm: 'corp', client: '192.0.2.1' }), undefined);
        assert.equal(p.value('enrollment', 'tokenissuer', { login: 'alice', realm: 'corp', client: '10.1.2.3' }), undefined);
        assert.equal(p.anyPolicy('enrollment', 'tokenissuer'), false);
        // enrollSMS is supported now: the stored policy grants it; its `*` stays out of force
        assert.equal(p.has('selfservice', 'enrollSMS', { login: 'alice', realm: 'corp' }), true);
        assert.equal(p.has('selfservice', 'mfa_passOnNoToken', { login: 'alice', realm: 'corp' }), false);
        assert.deepEqual(p.unsupportedActions().map((u) => `${u.policy}/${u.item}`).sort(), warned);

        const sim = p.simulate({ user: 'alice@corp', client: '10.1.2.3', scope: 'enrollment' });
        assert.deepEqual(sim.policies[0].notInForce, ['tokenissuer=corp']);
        const issuer = sim.actions.find((a) => a.action === 'tokenissuer')!;
        assert.match(issuer.unsupported!, /always carry the issuer 'otpd'/);
        assert.deepEqual(issuer.explanations.map((e) => e.policy), ['vpn']);
        assert.match(formatSimulation(sim), /not in force \(not supported by otpd\): tokenissuer=corp/);
        const portal = p.simulate({ user: 'alice@corp', scope: 'selfservice' });
        assert.deepEqual(portal.actions.map((a) => [a.action, a.value, a.unsupported !== undefined]), [['*', undefined, true], ['enrollSMS', true, false]]);

        // a reload (another node changed a policy) does not repeat the warnings
        const before = lines.length;
        await p.load();
        assert.equal(lines.slice(before).filter((l) => l.level === 40).length, 0);
      } finally {
        await services.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// ------------------------------------------------------------------ proofs for supported actions

const KEY = '3132333435363738393031323334353637383930';
const seed = Buffer.from(KEY, 'hex');
const crypt = (pw: string) => execFileSync('openssl', ['passwd', '-6', pw], { encoding: 'utf8' }).trim();

describe('supported actions take effect', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp();
    const file = join(t.dataDir, 'users');
    writeFileSync(file, [
      `alice:${crypt('AlicePw1')}:1001:1001:Alice Anders,,+4915123456789,,alice@example.org:/home/alice:/bin/sh`,
      `bob:${crypt('BobPw1')}:1002:1002:Bob Berg:/home/bob:/bin/sh`,
    ].join('\n') + '\n');
    for (const [path, form] of [
      ['/system/setResolver', { name: 'files', type: 'passwdresolver', fileName: file }],
      ['/system/setRealm', { realm: 'staff', resolvers: 'useridresolver.PasswdIdResolver.IdResolver.files' }],
      ['/system/setRealm', { realm: 'alias', resolvers: 'useridresolver.PasswdIdResolver.IdResolver.files' }],
      ['/system/setDefaultRealm', { realm: 'staff' }],
    ] as const) {
      assert.equal((await t.admin(path, form)).json.result.value, true, path);
    }
  });
  after(async () => t?.close());
  const policy = async (name: string, scope: string, action: string, extra: Record<string, string> = {}) => {
    const r = await t.admin('/system/setPolicy', { name, scope, action, realm: '*', user: '*', client: '*', ...extra });
    assert.equal(r.json.result.status, true, r.body);
  };
  const drop = async (...names: string[]) => assert.equal((await t.admin('/system/delPolicy', { name: names.join(','), enforce: 'true' })).json.result.status, true);

  test('maxtoken, maxtoken<TYPE> and tokencount limit /admin/init', async () => {
    const init = (serial: string, type = 'hmac', user = 'bob') => t.admin('/admin/init', { type, serial, otpkey: KEY, user, realm: 'staff' });
    await policy('max_all', 'enrollment', 'maxtoken=2');
    await policy('max_totp', 'enrollment', 'maxtokenTOTP=1');
    assert.equal((await init('B1', 'totp')).json.result.value, true);
    const secondTotp = await init('B2', 'totp');
    assert.equal(secondTotp.json.result.status, false, secondTotp.body);
    assert.equal(secondTotp.json.result.error.code, Errors.tokenLimitPerType.code);
    assert.match(secondTotp.json.result.error.message, /maxtokenTOTP$/);
    assert.equal((await init('B3', 'hmac')).json.result.value, true);
    const third = await init('B4', 'hmac');
    assert.equal(third.json.result.status, false, third.body);
    assert.equal(third.json.result.error.code, Errors.tokenLimitPerUser.code);
    await drop('max_all', 'max_totp');
    assert.equal((await init('B4', 'hmac')).json.result.value, true, 'without the policies the same init passes');
    // the realm holds B1, B3, B4: a tokencount of 3 admits no fourth
    await policy('realm_cap', 'enrollment', 'tokencount=3');
    const capped = await init('A1', 'hmac', 'alice');
    assert.equal(capped.json.result.status, false, capped.body);
    assert.equal(capped.json.result.error.code, Errors.tokenLimitRealm.code);
    await drop('realm_cap');
    assert.deepEqual(
      (await t.services.db.kysely.selectFrom('tokens').select('serial').orderBy('serial').execute()).map((r) => r.serial),
      ['B1', 'B3', 'B4'],
    );
    await t.admin('/admin/remove', { serial: 'B1' });
    await t.admin('/admin/remove', { serial: 'B3' });
    await t.admin('/admin/remove', { serial: 'B4' });
  });

  test('setrealm and detail_on_success change /validate/check', async () => {
    assert.equal((await t.admin('/admin/init', { type: 'hmac', serial: 'ALICE1', otpkey: KEY, pin: 'tokpin', user: 'alice', realm: 'staff' })).json.result.value, true);
    let counter = 0;
    const check = (form: Record<string, string>) => t.post('/validate/check', form);
    // realm 'alias' resolves alice too, but her token belongs to alice@staff
    const before = await check({ user: 'alice', realm: 'alias', pass: `tokpin${hotp(seed, counter)}` });
    assert.equal(before.json.result.value, false);
    await policy('to_staff', 'authorization', 'setrealm=staff', { realm: 'alias' });
    const after = await check({ user: 'alice', realm: 'alias', pass: `tokpin${hotp(seed, counter++)}` });
    assert.equal(after.json.result.value, true, after.body);
    assert.equal(after.json.detail, undefined);
    await policy('details', 'authorization', 'detail_on_success');
    const detailed = await check({ user: 'alice', pass: `tokpin${hotp(seed, counter++)}` });
    assert.equal(detailed.json.result.value, true);
    assert.equal(detailed.json.detail.serial, 'ALICE1');
    assert.equal(detailed.json.detail.realm, 'staff');
    await drop('to_staff', 'details');
    await t.admin('/admin/remove', { serial: 'ALICE1' });
  });

  test('every admin right is enforced on its endpoint', async () => {
    await t.services.admins.add('hd', 'helpdesk-password-1');
    const key = await t.services.admins.createApiKey('hd', 'tests');
    const asHd = (path: string, form: Record<string, string>) => t.post(path, form, { authorization: `Bearer ${key}` });
    await policy('root_admin', 'admin', '*', { user: 'admin' });
    await policy('root_audit', 'audit', 'view', { user: 'admin' });
    assert.equal((await t.admin('/admin/init', { type: 'hmac', serial: 'T1', otpkey: KEY, user: 'alice', realm: 'staff' })).json.result.value, true);
    assert.equal((await t.admin('/admin/init', { type: 'hmac', serial: 'T2', otpkey: KEY })).json.result.value, true);
    const cases: [scope: 'admin' | 'audit', action: string, path: string, form: Record<string, string>][] = [
      ['admin', 'show', '/admin/show', {}],
      ['admin', 'enable', '/admin/enable', { serial: 'T1' }],
      ['admin', 'disable', '/admin/disable', { serial: 'T1' }],
      ['admin', 'reset', '/admin/reset', { serial: 'T1' }],
      ['admin', 'resync', '/admin/resync', { serial: 'T1', otp1: hotp(seed, 5), otp2: hotp(seed, 6) }],
      ['admin', 'set', '/admin/set', { serial: 'T1', description: 'desk' }],
      ['admin', 'tokenowner', '/admin/getTokenOwner', { serial: 'T1' }],
      ['admin', 'userlist', '/admin/userlist', { realm: 'staff' }],
      ['admin', 'unassign', '/admin/unassign', { serial: 'T1' }],
      ['admin', 'assign', '/admin/assign', { serial: 'T1', user: 'alice', realm: 'staff' }],
      ['admin', 'initTOTP', '/admin/init', { type: 'totp', serial: 'T3', otpkey: KEY }],
      ['admin', 'getserial', '/admin/getSerialByOtp', { otp: hotp(seed, 9) }],
      ['admin', 'copytokenpin', '/admin/copyTokenPin', { from: 'T1', to: 'T2' }],
      ['admin', 'losttoken', '/admin/losttoken', { serial: 'T1' }],
      ['admin', 'copytokenuser', '/admin/copyTokenUser', { from: 'T1', to: 'T2' }],
      ['admin', 'remove', '/admin/remove', { serial: 'T2' }],
      ['audit', 'view', '/audit/search', {}],
    ];
    for (const [scope, action, path, form] of cases) {
      await policy('hd_rights', scope, scope === 'admin' ? `*, !${action}` : `!${action}`, { user: 'hd' });
      const denied = await asHd(path, form);
      assert.equal(denied.json.result.status, false, `${action}: ${denied.body}`);
      assert.equal(denied.json.result.error.code, 410, `${action}: ${denied.body}`);
      assert.match(denied.json.result.error.message, action.startsWith('init') ? /right to init token of type totp/ : new RegExp(`right to ${action}$`));
      await policy('hd_rights', scope, scope === 'admin' ? '*' : action, { user: 'hd' });
      const allowed = await asHd(path, form);
      if (path === '/audit/search') assert.ok(Array.isArray(allowed.json.rows) && allowed.json.total > 0, allowed.body); // flexigrid, no envelope
      else assert.equal(allowed.json.result.status, true, `${action}: ${allowed.body}`);
    }
    assert.equal(await t.services.db.kysely.selectFrom('tokens').select('serial').where('serial', '=', 'T2').executeTakeFirst(), undefined);
    // init<TYPE> alone grants enrolling that type, and only that type
    await policy('hd_rights', 'admin', 'initHMAC', { user: 'hd' });
    const hmac = await asHd('/admin/init', { type: 'hmac', serial: 'T4', otpkey: KEY });
    assert.equal(hmac.json.result.value, true, hmac.body);
    const totp = await asHd('/admin/init', { type: 'totp', serial: 'T5', otpkey: KEY });
    assert.equal(totp.json.result.error.code, 410, totp.body);
    assert.match(totp.json.result.error.message, /right to init token of type totp/);
    const show = await asHd('/admin/show', {});
    assert.equal(show.json.result.error.code, 410, 'initHMAC grants nothing else');
    await drop('hd_rights', 'root_admin', 'root_audit');
  });
});

const noSlapd = haveBinary('/usr/sbin/slapd', 'slapd');

describe('email_provider (out-of-band)', { skip: noSlapd }, () => {
  let env: OobEnv;
  before(async () => {
    env = await startOobEnv();
  });
  after(async () => env?.close());

  test('email_provider: an ordered fail-over chain, a dead first provider is skipped', async () => {
    const app = await env.app();
    try {
      await app.delivery.setProvider({
        type: 'email', name: 'dead', className: 'SMTPEmailProvider', timeout: '2',
        config: JSON.stringify({ SMTP_SERVER: '127.0.0.1', SMTP_PORT: 9, EMAIL_FROM: 'otpd@example.org' }),
      });
      await app.delivery.load();
      const init = await app.t.admin('/admin/init', { type: 'email', email_address: 'bob@example.org', user: 'bob', pin: '1234' });
      assert.equal(init.json.result.value, true, init.body);
      await app.policy('chain', 'authentication', 'email_provider=dead mail');
      await app.check({ user: 'bob', pass: '1234' });
      const code = await app.mailCode();
      assert.equal((await app.check({ user: 'bob', pass: `1234${code}` })).json.result.value, true);
      const log = await app.delivery.deliveryLog({});
      assert.equal(log.entries[0]?.provider, 'mail');
      assert.deepEqual(log.entries[0]?.attempts.map((a) => a.provider), ['dead', 'mail']);
    } finally {
      await app.close();
    }
  });
});
