import { test } from 'node:test';
import assert from 'node:assert/strict';
import { evaluate, evaluateAdmin } from '../../src/policy/evaluate.ts';
import { type CompiledPolicy, type PolicyInput, compilePolicy, prepareSubject } from '../../src/policy/match.ts';
import { formatSimulation, simulate } from '../../src/policy/simulate.ts';

function policies(...inputs: (Partial<PolicyInput> & { name: string })[]): CompiledPolicy[] {
  return inputs
    .map((i) => compilePolicy({ scope: 'authentication', action: 'passthru', realm: '*', user: '*', client: '*', ...i }))
    .sort((a, b) => (a.name < b.name ? -1 : 1));
}

const user1 = { login: 'user1', realm: 'realm', resolver: 'resolver', client: '192.0.2.10' };
const NOW = Date.UTC(2026, 10, 30, 12, 0);

test('spec 3.3 example: exact user entries win over *, an excluding policy is out', () => {
  const ps = policies(
    { name: 'p_star', user: '*', action: 'otppin=0' },
    { name: 'p_user1', user: 'user1', action: 'otppin=1' },
    { name: 'p_list', user: '*, user1', action: 'otppin=1' },
    { name: 'p_res', user: '*, user1.resolver:', action: 'otppin=1' },
    { name: 'p_not', user: '*, !user1', action: 'otppin=3' },
  );
  const d = evaluate(ps, 'authentication', 'otppin', user1, NOW, { explain: true });
  assert.equal(d.value, 'password');
  assert.deepEqual(d.winners, ['p_list', 'p_res', 'p_user1']);
  assert.equal(d.winner, 'p_list');
  assert.deepEqual(d.matched.sort(), ['p_list', 'p_res', 'p_star', 'p_user1']);
  assert.deepEqual(d.conflicts, []);
  const byName = Object.fromEntries(d.explanations.map((e) => [e.policy, e]));
  assert.equal(byName.p_star.outcome, 'outranked');
  assert.match(byName.p_star.reason, /user match is \*/);
  assert.equal(byName.p_not.outcome, 'not-matched');
  assert.match(byName.p_not.reason, /excluded by '!user1'/);
  // another user only gets the '*' policies
  const other = evaluate(ps, 'authentication', 'otppin', { login: 'user2', realm: 'realm' }, NOW);
  assert.deepEqual(other.winners, ['p_list', 'p_not', 'p_res', 'p_star']);
  assert.equal(other.value, 'password');
  assert.deepEqual(other.conflicts, [{ policy: 'p_not', value: 'ignore_pin' }, { policy: 'p_star', value: 'token_pin' }]);
});

test('precedence: user class first, then realm, then client', () => {
  const ps = policies(
    { name: 'a_pattern_exact_realm', user: 'user*', realm: 'realm', action: 'otppin=2' },
    { name: 'b_exact_user_any_realm', user: 'user1', realm: '*', action: 'otppin=1' },
    { name: 'c_star_exact_realm_exact_client', user: '*', realm: 'realm', client: '192.0.2.0/24', action: 'otppin=3' },
  );
  // exact user beats better realm and client
  assert.equal(evaluate(ps, 'authentication', 'otppin', user1, NOW).winner, 'b_exact_user_any_realm');
  // for user2 the pattern wins over '*' even though '*' has an exact client
  assert.equal(evaluate(ps, 'authentication', 'otppin', { ...user1, login: 'user2' }, NOW).winner, 'a_pattern_exact_realm');
  // same user class: exact realm beats '*'
  const realmPs = policies(
    { name: 'a_any_realm', realm: '*', action: 'otppin=1' },
    { name: 'b_exact_realm', realm: 'realm', action: 'otppin=2' },
  );
  assert.equal(evaluate(realmPs, 'authentication', 'otppin', user1, NOW).value, 'only_otp');
  // same user and realm class: exact client beats '*'
  const clientPs = policies(
    { name: 'a_any_client', client: '*', action: 'otppin=1' },
    { name: 'b_vpn', client: '192.0.2.0/24', action: 'otppin=2' },
    { name: 'c_other_net', client: '198.51.100.0/24', action: 'otppin=3' },
  );
  assert.equal(evaluate(clientPs, 'authentication', 'otppin', user1, NOW).winner, 'b_vpn');
  assert.equal(evaluate(clientPs, 'authentication', 'otppin', { ...user1, client: '203.0.113.1' }, NOW).winner, 'a_any_client');
  // without a client in the request the client field is not checked: no narrowing, first by name
  const noClient = evaluate(clientPs, 'authentication', 'otppin', { login: 'user1', realm: 'realm' }, NOW);
  assert.equal(noClient.winner, 'a_any_client');
  assert.equal(noClient.conflicts.length, 2);
});

test('conflicts: equally specific policies with different values are reported, first by name wins', () => {
  const ps = policies(
    { name: 'zeta', action: 'otppin=1' },
    { name: 'alpha', action: 'otppin=2' },
    { name: 'mid', action: 'otppin=only_otp' },
  );
  const d = evaluate(ps, 'authentication', 'otppin', user1, NOW, { explain: true });
  assert.equal(d.winner, 'alpha');
  assert.equal(d.value, 'only_otp');
  assert.deepEqual(d.conflicts, [{ policy: 'zeta', value: 'password' }]);
  const zeta = d.explanations.find((e) => e.policy === 'zeta')!;
  assert.equal(zeta.outcome, 'tie');
  assert.match(zeta.reason, /conflict/);
});

test('no matching policy: value undefined; inactive and other-scope policies are ignored', () => {
  const ps = policies(
    { name: 'off', action: 'otppin=1', active: 'False' },
    { name: 'enroll', scope: 'enrollment', action: 'maxtoken=2' },
    { name: 'lab', realm: 'lab', action: 'otppin=2' },
  );
  const d = evaluate(ps, 'authentication', 'otppin', user1, NOW, { explain: true });
  assert.equal(d.value, undefined);
  assert.equal(d.winner, undefined);
  assert.deepEqual(d.matched, []);
  assert.deepEqual(
    d.explanations.map((e) => [e.policy, e.outcome]),
    [
      ['lab', 'not-matched'],
      ['off', 'inactive'],
    ],
  );
});

test('flags: !name and name=false are values; a more specific policy can switch a flag off', () => {
  const ps = policies(
    { name: 'all_passthru', user: '*', action: 'passthru' },
    { name: 'not_for_user1', user: 'user1', action: '!passthru' },
  );
  assert.equal(evaluate(ps, 'authentication', 'passthru', user1, NOW).value, false);
  assert.equal(evaluate(ps, 'authentication', 'passthru', { ...user1, login: 'user2' }, NOW).value, true);
});

test('time conditions and ignoreTime', () => {
  const monday8 = new Date(2026, 10, 30, 8, 0).getTime();
  const sunday = new Date(2026, 11, 6, 8, 0).getTime();
  const ps = policies({ name: 'office', action: 'passOnNoToken', time: '* 7-18 * * 1-5 *' });
  assert.equal(evaluate(ps, 'authentication', 'passOnNoToken', user1, monday8).value, true);
  assert.equal(evaluate(ps, 'authentication', 'passOnNoToken', user1, sunday).value, undefined);
  assert.equal(evaluate(ps, 'authentication', 'passOnNoToken', user1, sunday, { ignoreTime: true }).value, true);
  const d = evaluate(ps, 'authentication', 'passOnNoToken', user1, sunday, { explain: true });
  assert.match(d.explanations[0].reason, /outside '\* 7-18 \* \* 1-5 \*'/);
});

test('* gives flags a value but not typed actions', () => {
  assert.equal(evaluate(policies({ name: 'all', scope: 'admin', action: '*' }), 'admin', 'remove', user1, NOW).value, true);
  // '*' is refused in every scope that has typed actions (selfservice, LinOTP's only one, is
  // not supported by otpd), but evaluate() must still not give '*' a typed value: build such
  // policies by hand
  const selfservice = (name: string, actions: [string, string | number | boolean][]): CompiledPolicy => ({
    ...compilePolicy({ name, scope: 'admin', action: 'show', realm: '*', user: '*', client: '*' }),
    scope: 'selfservice',
    actions: new Map(actions),
  });
  const ps = [selfservice('helpdesk', [['*', true]]), selfservice('pins', [['otp_pin_minlength', 6]])];
  assert.equal(evaluate(ps, 'selfservice', 'enrollSMS', user1, NOW).value, true);
  assert.equal(evaluate(ps, 'selfservice', 'otp_pin_minlength', user1, NOW).value, 6);
  assert.equal(evaluate([selfservice('only_star', [['*', true]])], 'selfservice', 'otp_pin_minlength', user1, NOW).value, undefined);
});

test('admin authorisation: no policy = all; union of realms; explicit denial wins', () => {
  const admin = prepareSubject({ login: 'helpdesk1', realm: 'linotp_admins' });
  assert.deepEqual(evaluateAdmin([], 'admin', 'remove', admin, NOW), { allowed: true, realms: '*', grantedBy: [] });
  const ps = policies(
    { name: 'hd_corp', scope: 'admin', action: 'show, reset, enable', realm: 'corp', user: 'helpdesk*' },
    { name: 'hd_lab', scope: 'admin', action: 'show, reset', realm: 'lab, labs2', user: 'helpdesk1@linotp_admins' },
    { name: 'superuser', scope: 'admin', action: '*', realm: '*', user: 'root' },
    { name: 'no_remove', scope: 'admin', action: '!remove', realm: '*', user: 'helpdesk2' },
    { name: 'super_no_remove', scope: 'admin', action: '*, !remove', realm: '*', user: 'helpdesk3' },
  );
  assert.deepEqual(evaluateAdmin(ps, 'admin', 'show', admin, NOW).realms, ['corp', 'lab', 'labs2']);
  assert.deepEqual(evaluateAdmin(ps, 'admin', 'enable', admin, NOW).realms, ['corp']);
  assert.equal(evaluateAdmin(ps, 'admin', 'remove', admin, NOW).allowed, false);
  assert.deepEqual(evaluateAdmin(ps, 'admin', 'remove', prepareSubject({ login: 'root' }), NOW).realms, '*');
  assert.equal(evaluateAdmin(ps, 'admin', 'remove', prepareSubject({ login: 'helpdesk2' }), NOW).deniedBy, 'no_remove');
  assert.equal(evaluateAdmin(ps, 'admin', 'show', prepareSubject({ login: 'helpdesk3' }), NOW).allowed, true);
  assert.equal(evaluateAdmin(ps, 'admin', 'remove', prepareSubject({ login: 'helpdesk3' }), NOW).allowed, false);
  // a scope with policies is closed to admins no policy names
  assert.equal(evaluateAdmin(ps, 'admin', 'show', prepareSubject({ login: 'intruder' }), NOW).allowed, false);
  // other scopes stay open while they have no policy
  assert.equal(evaluateAdmin(ps, 'system', 'write', prepareSubject({ login: 'intruder' }), NOW).allowed, true);
});

test('simulator: matching policies, winner per action, defaults, reasons, conflicts', () => {
  const ps = policies(
    { name: 'pin_all', action: 'otppin=1', realm: 'corp' },
    { name: 'pin_vpn', action: 'otppin=2', realm: 'corp', client: '10.0.0.0/8' },
    { name: 'pin_other', action: 'otppin=3', realm: 'corp', client: '10.1.0.0/16' },
    { name: 'lab_only', action: 'passthru', realm: 'lab' },
    { name: 'enroll', scope: 'enrollment', action: 'autoenrollment=sms email', realm: '*', user: '*#mobile' },
  );
  const r = simulate(ps, { user: 'alice@corp', client: '10.1.2.3', userInfo: { mobile: '+12015550100' } }, NOW);
  assert.equal(r.subject.login, 'alice');
  assert.equal(r.subject.realm, 'corp');
  assert.deepEqual(
    r.policies.map((p) => [p.name, p.matches]),
    [
      ['enroll', true],
      ['lab_only', false],
      ['pin_all', true],
      ['pin_other', true],
      ['pin_vpn', true],
    ],
  );
  const otppin = r.actions.find((a) => a.action === 'otppin')!;
  // both networks are 'exact' client matches (a narrower network is not more specific): first by name
  assert.equal(otppin.value, 'ignore_pin');
  assert.equal(otppin.winner, 'pin_other');
  assert.deepEqual(otppin.conflicts, [{ policy: 'pin_vpn', value: 'only_otp' }]);
  assert.equal(r.warnings.length, 1);
  assert.match(r.warnings[0], /authentication\/otppin: 'pin_other', 'pin_vpn'/);
  assert.equal(r.actions.find((a) => a.action === 'autoenrollment')!.value, 'sms email');
  assert.equal(r.actions.some((a) => a.action === 'passthru'), false);
  // an action no policy sets: the catalogue default, marked as such
  const dflt = simulate(ps, { user: 'bob', realm: 'lab2', scope: 'authentication', action: 'otppin' }, NOW);
  assert.deepEqual([dflt.actions[0].value, dflt.actions[0].source], ['token_pin', 'default']);
  const text = formatSimulation(r);
  assert.match(text, /authentication\/otppin = "ignore_pin" \(from 'pin_other'\)/);
  assert.match(text, /lab_only \[authentication\]: realm 'corp' is not in 'lab'/);
  assert.match(text, /Conflicts:/);
  assert.throws(() => simulate(ps, { scope: 'nope' as never }, NOW), /unknown scope/);
  assert.throws(() => simulate(ps, { scope: 'authentication', action: 'nope' }, NOW), /unknown action 'nope'/);
});
