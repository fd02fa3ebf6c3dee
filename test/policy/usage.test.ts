// policiesNaming: which stored policies list a name in a names action (sms_provider), parsed
// as policies load; a stored policy that does not parse and mentions the action is reported as
// unreadable (the caller fails closed), one that does not mention it is not.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { policiesNaming } from '../../src/policy/usage.ts';

const row = (name: string, action: string, scope = 'authentication') => ({ name, scope, action });

test('names in the value count, in any position and quoting; other actions and look-alikes do not', () => {
  const rows = [
    row('b_route', "sms_provider='gw1 gw2', otppin=1"),
    row('a_single', 'sms_provider=gw2'),
    row('other_action', 'email_provider=gw2'),
    row('lookalike', 'sms_provider=gw22 xgw2'),
    row('admin', '*', 'admin'),
  ];
  assert.deepEqual(policiesNaming(rows, 'sms_provider', 'gw2'), { naming: ['a_single', 'b_route'], unreadable: [] });
  assert.deepEqual(policiesNaming(rows, 'email_provider', 'gw2'), { naming: ['other_action'], unreadable: [] });
  assert.deepEqual(policiesNaming(rows, 'sms_provider', 'GW2'), { naming: [], unreadable: [] }, 'provider names are case-sensitive');
});

test('a policy that does not parse is unreadable when it mentions the action, ignored otherwise', () => {
  const rows = [
    row('negated', '!sms_provider'),
    row('wrong_scope', 'sms_provider=gw2', 'admin'),
    row('upper', 'SMS_PROVIDER=gw2'),
    row('unrelated', 'nosuchaction=1'),
    row('bad_scope', 'otppin=1', 'nosuchscope'),
  ];
  assert.deepEqual(policiesNaming(rows, 'sms_provider', 'gw2'), { naming: [], unreadable: ['negated', 'upper', 'wrong_scope'] });
});

test('unsupported actions of a stored policy do not hide the rest', () => {
  assert.deepEqual(policiesNaming([row('mixed', 'sms_provider=gw2, voice_provider=v1')], 'sms_provider', 'gw2'), { naming: ['mixed'], unreadable: [] });
});
