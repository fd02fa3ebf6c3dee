// The simulator's plain-sentence explanation (checkPolicy's `explanation`): the decision names
// the policy that set the value and what the value means; the losers say why in words (less
// specific, other realm, inactive); a user of another realm is told the default applies and
// which policy does not apply to them, and why; admin rights say who granted or denied them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { explainSimulation } from '../../src/policy/explain.ts';
import { type CompiledPolicy, type PolicyInput, compilePolicy } from '../../src/policy/match.ts';
import { simulate } from '../../src/policy/simulate.ts';

function policies(...inputs: (Partial<PolicyInput> & { name: string })[]): CompiledPolicy[] {
  return inputs
    .map((i) => compilePolicy({ scope: 'authentication', action: 'passthru', realm: '*', user: '*', client: '*', ...i }))
    .sort((a, b) => (a.name < b.name ? -1 : 1));
}
const NOW = Date.UTC(2026, 10, 30, 12, 0);

test('otppin: the winner and why, the losers in words, another realm gets the default', () => {
  const ps = policies(
    { name: 'pin_corp', action: 'otppin=1', realm: 'corp' },
    { name: 'pin_any', action: 'otppin=0', realm: '*' },
    { name: 'pin_lab', action: 'otppin=2', realm: 'lab' },
    { name: 'pin_off', action: 'otppin=3', realm: 'corp', active: false },
  );
  const corp = explainSimulation(simulate(ps, { user: 'alice', realm: 'corp', client: '10.1.2.3', scope: 'authentication', action: 'otppin' }, NOW));
  assert.equal(corp.subject, 'alice in realm corp, from client 10.1.2.3');
  const [a] = corp.actions;
  assert.equal(a!.decision, "authentication/otppin is 'password' (the password is the user's user-store password followed by the OTP) for alice in realm corp, from client 10.1.2.3: set by policy pin_corp.");
  assert.match(a!.details[0]!, /^pin_corp is the most specific of the 2 matching policies that set it \(it applies to every user, names the realm, applies to every client\)/);
  assert.ok(a!.details.includes("pin_any matches too (it sets 'token_pin') but loses: pin_corp names the realm, this one applies to every realm."), a!.details.join('\n'));
  assert.ok(a!.details.some((d) => /^pin_lab does not apply .*: realm 'corp' is not in 'lab'\.$/.test(d)), a!.details.join('\n'));
  assert.ok(a!.details.some((d) => /^pin_off would set it .* but is inactive\.$/.test(d)), a!.details.join('\n'));
  assert.deepEqual(corp.policies.map((p) => [p.name, p.applies]), [['pin_any', true], ['pin_corp', true], ['pin_lab', false], ['pin_off', false]]);
  assert.equal(corp.policies[1]!.text, 'pin_corp applies to alice: its realm, user, client and time conditions all fit.');

  const other = explainSimulation(simulate(policies({ name: 'pin_corp', action: 'otppin=1', realm: 'corp' }), { user: 'bob', realm: 'lab', client: '', scope: 'authentication', action: 'otppin' }, NOW));
  assert.equal(other.actions[0]!.decision, "No policy sets authentication/otppin for bob in realm lab, so otpd uses its default: 'token_pin' (the password is the token PIN followed by the OTP).");
  assert.deepEqual(other.actions[0]!.details, ["pin_corp does not apply (it sets 'password'): realm 'lab' is not in 'corp'."]);
  assert.deepEqual(other.policies, [{ name: 'pin_corp', applies: false, text: "pin_corp does not apply to bob: realm 'lab' is not in 'corp'." }]);

  const only = explainSimulation(simulate(policies({ name: 'pin_corp', action: 'otppin=1', realm: 'corp' }), { user: 'alice', realm: 'corp', scope: 'authentication', action: 'otppin' }, NOW));
  assert.match(only.actions[0]!.details[0]!, /^pin_corp is the only active policy that matches and sets it/);
  assert.equal(only.subject, 'alice in realm corp');
});

test('a conflict, an unset action, admin rights granted and denied', () => {
  const ps = policies(
    { name: 'a_pin', action: 'otppin=1', realm: 'corp' },
    { name: 'b_pin', action: 'otppin=2', realm: 'corp' },
  );
  const tie = explainSimulation(simulate(ps, { user: 'alice', realm: 'corp', scope: 'authentication', action: 'otppin' }, NOW));
  assert.ok(tie.actions[0]!.details.some((d) => /^b_pin matches too and is as specific .*: a conflict; a_pin wins because its name sorts first\.$/.test(d)), tie.actions[0]!.details.join('\n'));
  const unset = explainSimulation(simulate(ps, { user: 'alice', realm: 'corp', scope: 'authentication', action: 'sms_provider' }, NOW));
  assert.equal(unset.actions[0]!.decision, 'No policy sets authentication/sms_provider for alice in realm corp: it is not set (off).');

  const admins = policies(
    { name: 'writers', scope: 'system', action: 'read, write', realm: '*', user: 'admin' },
    { name: 'readers', scope: 'system', action: 'read, !write', realm: '*', user: 'helpdesk' },
  );
  const granted = explainSimulation(simulate(admins, { user: 'admin', scope: 'system', action: 'write' }, NOW));
  assert.equal(granted.actions[0]!.decision, 'admin (no realm given) may write in every realm: granted by writers.');
  const denied = explainSimulation(simulate(admins, { user: 'helpdesk', scope: 'system', action: 'write' }, NOW));
  assert.equal(denied.actions[0]!.decision, 'helpdesk (no realm given) may not write: readers denies it.');
  const nobody = explainSimulation(simulate(admins, { user: 'eve', scope: 'system', action: 'write' }, NOW));
  assert.equal(nobody.actions[0]!.decision, 'eve (no realm given) may not write: policies restrict the scope system and none that matches grants it.');
});
