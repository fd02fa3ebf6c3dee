// The pure steps of the validation pipeline, without a database: split and classify for every
// token type × otppin mode × input shape (the expectations are written out by hand from spec 2.4
// and the otppin invariant of test/security/otppin-matrix.test.ts, not computed), which
// first-factor checks classification asks for (an empty first factor asks no directory bind),
// challenge answers, the finish plan, the answer, the policy reads and the token screen.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { hotp } from '../../src/otp/hotp.ts';
import '../../src/tokens/all.ts';
import { requireTokenType } from '../../src/tokens/registry.ts';
import type { Token } from '../../src/tokens/types.ts';
import { answer } from '../../src/validation/answer.ts';
import type { Challenge } from '../../src/validation/challenges.ts';
import { classifyWith, type Classification, type ClassifyInput, type PinCheck } from '../../src/validation/classify.ts';
import { planFinish } from '../../src/validation/finish-plan.ts';
import { fail, type CheckOutcome } from '../../src/validation/outcome.ts';
import { challengeCapable, otppinMode, tokenRefusal } from '../../src/validation/policies.ts';
import type { DirectoryUser, PolicyPort, PolicySubject } from '../../src/validation/ports.ts';
import { REASONS } from '../../src/validation/reasons.ts';
import { screenTokens } from '../../src/validation/select.ts';
import { parseUsageTime, usageRefusal } from '../../src/tokens/usage.ts';
import { splitPass, type OtpPinMode } from '../../src/validation/split.ts';

const SEED = Buffer.from('12345678901234567890'); // RFC 4226 appendix D
const PIN = '1234'; // the token PIN
const DIR = 'Dir9'; // the user-store password
const PW = 'Static-Pw-9'; // the pw token's static password
const CODE = '481516'; // an sms/email code
const JUNK = 'x'.repeat(300);
const NOW = 59_000; // TOTP step 1 (30 s)

type TypeName = 'hmac' | 'totp' | 'sms' | 'email' | 'spass' | 'pw';
const TYPES: TypeName[] = ['hmac', 'totp', 'sms', 'email', 'spass', 'pw'];
const MODES: OtpPinMode[] = [0, 1, 2, 3];
type Shape = 'pinOnly' | 'pinOtp' | 'otpOnly' | 'empty' | 'overLong';
const SHAPES: Shape[] = ['pinOnly', 'pinOtp', 'otpOnly', 'empty', 'overLong'];

/** The value after the PIN: hmac counter 0 = RFC 4226 "755224", totp step 1 = "287082". */
const OTP: Record<TypeName, string> = { hmac: '755224', totp: '287082', sms: CODE, email: CODE, spass: '', pw: PW };

function token(type: TypeName, over: Partial<Token> = {}): Token {
  return {
    id: TYPES.indexOf(type) + 1, serial: `S-${type}`, type, description: '', keyEnc: '', hashlib: 'sha1',
    otplen: type === 'pw' ? PW.length : type === 'spass' ? 0 : 6,
    counter: 0, countWindow: 10, syncWindow: 1000, maxFail: 10, failCount: 0, active: true, pinHash: 'set', pinSalt: '',
    userId: 'u1', resolver: 'r1', resolverClass: 'passwd', info: type === 'totp' ? { timeStep: '30', timeWindow: '1', timeShift: '0' } : {},
    realms: ['staff'], createdAt: 0, lastAuthSuccess: null, lastAuthMatch: null, countAuth: 0, countAuthSuccess: 0, ...over,
  };
}

/** The pass of each shape; the first factor is the mode's (the directory password under otppin=1, else the PIN). */
function passOf(shape: Shape, type: TypeName, mode: OtpPinMode): string {
  const first = mode === 1 ? DIR : PIN;
  return { pinOnly: first, pinOtp: first + OTP[type], otpOnly: OTP[type], empty: '', overLong: JUNK + first + OTP[type] }[shape];
}

function input(type: TypeName, mode: OtpPinMode, pass: string, over: Partial<ClassifyInput> = {}): ClassifyInput {
  const t = over.token ?? token(type);
  return {
    token: t, type: requireTokenType(type), pass, mode, prependPin: true, hasUser: true, now: NOW,
    challengeCapable: requireTokenType(type).mode === 'challenge', answersTransaction: false, openChallenges: [],
    seed: () => (type === 'pw' ? Buffer.from(PW) : type === 'hmac' || type === 'totp' ? SEED : Buffer.alloc(0)),
    matchesChallenge: type === 'sms' || type === 'email' ? (ch, otp) => ch.data.code === otp : undefined,
    ...over,
  };
}

/** Classifies, answering checks as the real ones would (token PIN 1234, directory password Dir9); returns the checks asked. */
async function run(i: ClassifyInput): Promise<{ c: Classification; asked: string[] }> {
  const asked: string[] = [];
  const c = await classifyWith(i, (q: PinCheck) => {
    asked.push(`${q.against}:${q.pin}`);
    return q.against === 'tokenPin' ? q.pin === PIN : q.pin === DIR;
  });
  return { c, asked };
}

const summary = (c: Classification) => (c.kind === 'valid' ? `valid ${c.matched}->${c.next}` : c.kind);

describe('split: every token type × otppin mode × input shape (PrependPin)', () => {
  // [pin, otp] per type, mode and shape
  const J = JUNK;
  const EXPECTED: Record<TypeName, Record<OtpPinMode, Record<Shape, [string, string]>>> = {
    hmac: {
      0: { pinOnly: [PIN, ''], pinOtp: [PIN, '755224'], otpOnly: ['', '755224'], empty: ['', ''], overLong: [J + PIN, '755224'] },
      1: { pinOnly: [DIR, ''], pinOtp: [DIR, '755224'], otpOnly: ['', '755224'], empty: ['', ''], overLong: [J + DIR, '755224'] },
      2: { pinOnly: ['', PIN], pinOtp: ['', `${PIN}755224`], otpOnly: ['', '755224'], empty: ['', ''], overLong: ['', `${J}${PIN}755224`] },
      3: { pinOnly: [PIN, ''], pinOtp: [PIN, '755224'], otpOnly: ['', '755224'], empty: ['', ''], overLong: [J + PIN, '755224'] },
    },
    totp: {
      0: { pinOnly: [PIN, ''], pinOtp: [PIN, '287082'], otpOnly: ['', '287082'], empty: ['', ''], overLong: [J + PIN, '287082'] },
      1: { pinOnly: [DIR, ''], pinOtp: [DIR, '287082'], otpOnly: ['', '287082'], empty: ['', ''], overLong: [J + DIR, '287082'] },
      2: { pinOnly: ['', PIN], pinOtp: ['', `${PIN}287082`], otpOnly: ['', '287082'], empty: ['', ''], overLong: ['', `${J}${PIN}287082`] },
      3: { pinOnly: [PIN, ''], pinOtp: [PIN, '287082'], otpOnly: ['', '287082'], empty: ['', ''], overLong: [J + PIN, '287082'] },
    },
    sms: {
      0: { pinOnly: [PIN, ''], pinOtp: [PIN, CODE], otpOnly: ['', CODE], empty: ['', ''], overLong: [J + PIN, CODE] },
      1: { pinOnly: [DIR, ''], pinOtp: [DIR, CODE], otpOnly: ['', CODE], empty: ['', ''], overLong: [J + DIR, CODE] },
      2: { pinOnly: ['', PIN], pinOtp: ['', PIN + CODE], otpOnly: ['', CODE], empty: ['', ''], overLong: ['', J + PIN + CODE] },
      3: { pinOnly: [PIN, ''], pinOtp: [PIN, CODE], otpOnly: ['', CODE], empty: ['', ''], overLong: [J + PIN, CODE] },
    },
    email: {
      0: { pinOnly: [PIN, ''], pinOtp: [PIN, CODE], otpOnly: ['', CODE], empty: ['', ''], overLong: [J + PIN, CODE] },
      1: { pinOnly: [DIR, ''], pinOtp: [DIR, CODE], otpOnly: ['', CODE], empty: ['', ''], overLong: [J + DIR, CODE] },
      2: { pinOnly: ['', PIN], pinOtp: ['', PIN + CODE], otpOnly: ['', CODE], empty: ['', ''], overLong: ['', J + PIN + CODE] },
      3: { pinOnly: [PIN, ''], pinOtp: [PIN, CODE], otpOnly: ['', CODE], empty: ['', ''], overLong: [J + PIN, CODE] },
    },
    // no OTP part: the whole pass is the PIN in every mode
    spass: {
      0: { pinOnly: [PIN, ''], pinOtp: [PIN, ''], otpOnly: ['', ''], empty: ['', ''], overLong: [J + PIN, ''] },
      1: { pinOnly: [DIR, ''], pinOtp: [DIR, ''], otpOnly: ['', ''], empty: ['', ''], overLong: [J + DIR, ''] },
      2: { pinOnly: [PIN, ''], pinOtp: [PIN, ''], otpOnly: ['', ''], empty: ['', ''], overLong: [J + PIN, ''] },
      3: { pinOnly: [PIN, ''], pinOtp: [PIN, ''], otpOnly: ['', ''], empty: ['', ''], overLong: [J + PIN, ''] },
    },
    pw: {
      0: { pinOnly: [PIN, ''], pinOtp: [PIN, PW], otpOnly: ['', PW], empty: ['', ''], overLong: [J + PIN, PW] },
      1: { pinOnly: [DIR, ''], pinOtp: [DIR, PW], otpOnly: ['', PW], empty: ['', ''], overLong: [J + DIR, PW] },
      2: { pinOnly: ['', PIN], pinOtp: ['', PIN + PW], otpOnly: ['', PW], empty: ['', ''], overLong: ['', J + PIN + PW] },
      3: { pinOnly: [PIN, ''], pinOtp: [PIN, PW], otpOnly: ['', PW], empty: ['', ''], overLong: [J + PIN, PW] },
    },
  };
  for (const type of TYPES) {
    for (const mode of MODES) {
      test(`${type}, otppin=${mode}`, () => {
        for (const shape of SHAPES) {
          const [pin, otp] = EXPECTED[type][mode][shape];
          assert.deepEqual(splitPass(passOf(shape, type, mode), token(type), requireTokenType(type), mode, true), { pin, otp }, shape);
        }
      });
    }
  }

  test('PrependPin off: the OTP comes first', () => {
    assert.deepEqual(splitPass(`755224${PIN}`, token('hmac'), requireTokenType('hmac'), 0, false), { pin: PIN, otp: '755224' });
    assert.deepEqual(splitPass(`${PW}${PIN}`, token('pw'), requireTokenType('pw'), 3, false), { pin: PIN, otp: PW });
    assert.deepEqual(splitPass(PIN, token('hmac'), requireTokenType('hmac'), 0, false), { pin: PIN, otp: '' }, 'shorter than the OTP: all PIN');
  });

  test('sms/email cut at the code length in the token info when set', () => {
    assert.deepEqual(splitPass(`${PIN}12345678`, token('sms', { info: { otplen: '8' } }), requireTokenType('sms'), 0, true), { pin: PIN, otp: '12345678' });
  });
});

const T = (pin: string) => `tokenPin:${pin}`;
const S = (pin: string) => `storePassword:${pin}`;

describe('classify: every token type × otppin mode × input shape', () => {
  // [classification, first-factor checks asked] with no open challenge and no challenge_response
  type Row = [string, string[]];
  const oath = (otp: string, valid: string): Record<OtpPinMode, Record<Shape, Row>> => ({
    0: { pinOnly: ['pin', [T(PIN)]], pinOtp: [valid, [T(PIN)]], otpOnly: ['invalid', [T('')]], empty: ['invalid', [T('')]], overLong: ['invalid', [T(JUNK + PIN)]] },
    // the user-store password, never when it is empty
    1: { pinOnly: ['pin', [S(DIR)]], pinOtp: [valid, [S(DIR)]], otpOnly: ['invalid', []], empty: ['invalid', []], overLong: ['invalid', [S(JUNK + DIR)]] },
    2: { pinOnly: ['pin', []], pinOtp: ['pin', []], otpOnly: [valid, []], empty: ['pin', []], overLong: ['pin', []] },
    3: { pinOnly: ['pin', []], pinOtp: [valid, []], otpOnly: [valid, []], empty: ['pin', []], overLong: [valid, []] },
  });
  // challenge-only: the mode's first factor asks for a code (under 2 and 3: anything does)
  const challengeOnly: Record<OtpPinMode, Record<Shape, Row>> = {
    0: { pinOnly: ['challenge', [T(PIN)]], pinOtp: ['invalid', [T(PIN + CODE)]], otpOnly: ['invalid', [T(CODE)]], empty: ['invalid', [T('')]], overLong: ['invalid', [T(JUNK + PIN + CODE)]] },
    1: { pinOnly: ['challenge', [S(DIR)]], pinOtp: ['invalid', [S(DIR + CODE)]], otpOnly: ['invalid', [S(CODE)]], empty: ['invalid', []], overLong: ['invalid', [S(JUNK + DIR + CODE)]] },
    2: { pinOnly: ['challenge', []], pinOtp: ['challenge', []], otpOnly: ['challenge', []], empty: ['challenge', []], overLong: ['challenge', []] },
    3: { pinOnly: ['challenge', []], pinOtp: ['challenge', []], otpOnly: ['challenge', []], empty: ['challenge', []], overLong: ['challenge', []] },
  };
  const EXPECTED: Record<TypeName, Record<OtpPinMode, Record<Shape, Row>>> = {
    hmac: oath('755224', 'valid 0->1'),
    totp: oath('287082', 'valid 1->2'),
    sms: challengeOnly,
    email: challengeOnly,
    // nothing but its PIN: "only the OTP" and "ignore the PIN" still check the PIN
    spass: {
      0: { pinOnly: ['valid 0->0', [T(PIN)]], pinOtp: ['valid 0->0', [T(PIN)]], otpOnly: ['invalid', [T('')]], empty: ['invalid', [T('')]], overLong: ['invalid', [T(JUNK + PIN)]] },
      1: { pinOnly: ['valid 0->0', [S(DIR)]], pinOtp: ['valid 0->0', [S(DIR)]], otpOnly: ['invalid', []], empty: ['invalid', []], overLong: ['invalid', [S(JUNK + DIR)]] },
      2: { pinOnly: ['valid 0->0', [T(PIN)]], pinOtp: ['valid 0->0', [T(PIN)]], otpOnly: ['invalid', [T('')]], empty: ['invalid', [T('')]], overLong: ['invalid', [T(JUNK + PIN)]] },
      3: { pinOnly: ['valid 0->0', [T(PIN)]], pinOtp: ['valid 0->0', [T(PIN)]], otpOnly: ['invalid', [T('')]], empty: ['invalid', [T('')]], overLong: ['invalid', [T(JUNK + PIN)]] },
    },
    // a static value keeps the counter
    pw: oath(PW, 'valid 0->0'),
  };
  for (const type of TYPES) {
    for (const mode of MODES) {
      test(`${type}, otppin=${mode}`, async () => {
        for (const shape of SHAPES) {
          const [kind, asks] = EXPECTED[type][mode][shape];
          const { c, asked } = await run(input(type, mode, passOf(shape, type, mode)));
          assert.equal(summary(c), kind, `${shape}: classification`);
          assert.deepEqual(asked, asks, `${shape}: checks asked`);
          assert.equal(c.token.serial, `S-${type}`);
        }
      });
    }
  }

  test('the RFC vectors behind the table', () => {
    assert.equal(hotp(SEED, 0), '755224');
    assert.equal(hotp(SEED, 1), '287082');
  });

  test('a used HOTP counter does not match again; the next one does', async () => {
    const used = token('hmac', { counter: 1 });
    // the value accepted last (counter 0), sent again: refused, but no guess
    assert.equal(summary((await run(input('hmac', 0, `${PIN}755224`, { token: used }))).c), 'replay');
    // an older used value is a wrong OTP like any other
    assert.equal(summary((await run(input('hmac', 0, `${PIN}755224`, { token: token('hmac', { counter: 2 }) }))).c), 'pin');
    // with a wrong PIN the value accepted last is a wrong guess at the PIN
    assert.equal(summary((await run(input('hmac', 0, `9999755224`, { token: used }))).c), 'invalid');
    assert.equal(summary((await run(input('hmac', 0, `${PIN}287082`, { token: used }))).c), 'valid 1->2');
  });

  test('otppin=1 asks the directory once per pass: wrong OTP (password right) and wrong password (OTP right)', async () => {
    const wrongOtp = await run(input('hmac', 1, `${DIR}000000`));
    assert.deepEqual([wrongOtp.c.kind, wrongOtp.asked], ['pin', [S(DIR)]]);
    const wrongPw = await run(input('hmac', 1, 'nope755224'));
    assert.deepEqual([wrongPw.c.kind, wrongPw.asked], ['invalid', [S('nope')]]);
  });

  test('without a user the store password is never asked and never matches', async () => {
    const { c, asked } = await run(input('hmac', 1, `${DIR}755224`, { hasUser: false }));
    assert.equal(summary(c), 'invalid');
    assert.deepEqual(asked, []);
  });

  test('an autoenrolled token (pin_source=store, no PIN) takes the store password under otppin=0', async () => {
    const t = token('sms', { pinHash: '', info: { pin_source: 'store' } });
    const { c, asked } = await run(input('sms', 0, DIR, { token: t }));
    assert.equal(c.kind, 'challenge');
    assert.deepEqual(asked, [S(DIR)]);
  });

  test('the OTP window is searched whole unless the first factor matched (then a match ends it)', async () => {
    const real = requireTokenType('hmac');
    const searches: string[] = [];
    const counted = { ...real, verify: (...a: Parameters<typeof real.verify>) => (searches.push(a[4] ? 'until a match' : 'whole window'), real.verify(...a)) };
    const kinds = async (mode: OtpPinMode, pass: string) => {
      searches.length = 0;
      const { c } = await run(input('hmac', mode, pass, { type: counted }));
      return `${summary(c)}: ${searches.join(', ')}`;
    };
    // a wrong PIN with the right OTP costs what a wrong PIN with a wrong OTP costs: no oracle for the OTP
    assert.equal(await kinds(0, '9999755224'), 'invalid: whole window');
    assert.equal(await kinds(0, '9999000000'), 'invalid: whole window');
    // the PIN matched: the search may end at a match (a wrong OTP finds none, so it is the whole
    // window all the same: findCounter in test/otp/vectors.test.ts)
    assert.equal(await kinds(0, `${PIN}000000`), 'pin: until a match');
    assert.equal(await kinds(0, `${PIN}755224`), 'valid 0->1: until a match');
    // otppin=1 checks the OTP before the directory password: always the whole window
    assert.equal(await kinds(1, `${DIR}755224`), 'valid 0->1: whole window');
    assert.equal(await kinds(1, 'nope755224'), 'invalid: whole window');
  });

  test('the seed is opened only when an OTP is checked against it', async () => {
    let opened = 0;
    const seed = () => (opened++, SEED);
    await run(input('sms', 0, PIN, { seed }));
    assert.equal(opened, 0, 'a challenge-only type checks codes through its handler');
    await run(input('hmac', 0, `${PIN}755224`, { seed }));
    assert.equal(opened, 1);
  });
});

describe('classify: challenges', () => {
  const challenge = (id: number, code = CODE): Challenge => ({
    id, transactionId: `T${id}`, tokenId: 1, serial: 'S', subject: 'alice@staff', otpHash: '', counter: -1, status: 'open',
    receivedCount: 0, validTan: false, failCount: 0, message: '', client: '', createdAt: 0, expiresAt: 1e12, data: { code },
  });

  test('challenge_response: a PIN-only pass asks for a challenge (otppin 0, 1, 3; under 2 only the empty pass)', async () => {
    const capable = { challengeCapable: true };
    assert.equal((await run(input('hmac', 0, PIN, capable))).c.kind, 'challenge');
    assert.equal((await run(input('hmac', 1, DIR, capable))).c.kind, 'challenge');
    assert.equal((await run(input('hmac', 3, 'anything', capable))).c.kind, 'challenge');
    assert.equal((await run(input('hmac', 2, '', capable))).c.kind, 'challenge');
    assert.equal((await run(input('hmac', 2, PIN, capable))).c.kind, 'pin', 'otppin=2: a PIN is not the OTP');
    assert.equal((await run(input('hmac', 0, 'wrong', capable))).c.kind, 'invalid');
    assert.equal(summary((await run(input('hmac', 0, `${PIN}755224`, capable))).c), 'valid 0->1', 'PIN+OTP still authenticates at once');
  });

  test('an answer to an HOTP challenge: the bare OTP, or PIN+OTP', async () => {
    const open = [challenge(7)];
    const answering = { challengeCapable: true, answersTransaction: true, openChallenges: open };
    const bare = (await run(input('hmac', 0, '755224', answering)));
    assert.equal(summary(bare.c), 'valid 0->1');
    assert.deepEqual(bare.asked, [], 'the PIN was checked when the challenge was made');
    assert.equal(bare.c.kind === 'valid' && bare.c.challenge?.id, 7);
    assert.deepEqual((await run(input('hmac', 0, `${PIN}755224`, answering))).asked, [T(PIN)]);
    assert.equal(summary((await run(input('hmac', 0, `${PIN}755224`, answering))).c), 'valid 0->1');
    assert.equal((await run(input('hmac', 0, '000000', answering))).c.kind, 'invalid');
    assert.equal((await run(input('hmac', 0, `${PIN}000000`, answering))).c.kind, 'pin');
    const notOpen = await run(input('hmac', 0, '755224', { ...answering, openChallenges: [] }));
    assert.equal(notOpen.c.kind, 'notOpen', 'no open challenge of this user: nothing to compare with');
    assert.deepEqual(notOpen.asked, [], 'and no first factor is checked');
  });

  test('an sms answer: the code (by transaction) or PIN+code (without); the first matching challenge wins', async () => {
    const open = [challenge(1, '111111'), challenge(2)];
    const byTid = await run(input('sms', 0, CODE, { answersTransaction: true, openChallenges: open }));
    assert.equal(byTid.c.kind === 'valid' && byTid.c.challenge?.id, 2);
    assert.deepEqual(byTid.asked, []);
    const withPin = await run(input('sms', 0, PIN + CODE, { openChallenges: open }));
    assert.equal(withPin.c.kind === 'valid' && withPin.c.challenge?.id, 2);
    assert.deepEqual(withPin.asked, [T(PIN)]);
    const wrongPin = await run(input('sms', 0, `9999${CODE}`, { openChallenges: open }));
    assert.equal(wrongPin.c.kind, 'invalid', 'the right code after a wrong PIN');
    assert.deepEqual(wrongPin.c.kind === 'invalid' && wrongPin.c.challenges.map((c) => c.id), [1, 2], 'its open challenges count the failure');
    const wrongCode = await run(input('sms', 0, `${PIN}000000`, { openChallenges: open }));
    assert.equal(wrongCode.c.kind, 'pin');
    assert.equal((await run(input('sms', 0, PIN, { openChallenges: open }))).c.kind, 'challenge', 'the PIN alone asks for a new code');
  });
});

describe('finish plan', () => {
  const t1 = token('hmac');
  const t2 = token('totp');
  const ch = { id: 3 } as Challenge;
  test('one valid token succeeds, two are ambiguous', () => {
    const v = { kind: 'valid', token: t1, matched: 0, next: 1 } as const;
    assert.equal(planFinish([v, { kind: 'invalid', token: t2, challenges: [] }], 0).kind, 'success');
    assert.equal(planFinish([v, { ...v, token: t2 }], 0).kind, 'ambiguous');
  });
  test('a challenge request wins over a PIN match; a PIN match over an invalid token', () => {
    assert.deepEqual(planFinish([{ kind: 'pin', token: t1, challenges: [] }, { kind: 'challenge', token: t2 }], 0), { kind: 'challenge', tokens: [t2] });
    assert.deepEqual(planFinish([{ kind: 'pin', token: t1, challenges: [ch] }, { kind: 'invalid', token: t2, challenges: [] }], 0), { kind: 'wrongOtp', tokens: [t1], challenges: [ch] });
  });
  test('nothing matched: wrong PIN, or wrong user password under otppin=1', () => {
    const none = [{ kind: 'invalid', token: t1, challenges: [ch] }] as Classification[];
    assert.deepEqual(planFinish(none, 0), { kind: 'wrongFirstFactor', reason: 'wrongPin', detail: 'wrong otp pin -1', challenges: [ch], compared: [t1] });
    assert.equal((planFinish(none, 1) as { reason: string }).reason, 'wrongPassword');
  });
  test('an answer to a transaction no token has open: nothing compared, no attempt kept', () => {
    const notOpen = [{ kind: 'notOpen', token: t1 }, { kind: 'notOpen', token: t2 }] as Classification[];
    assert.deepEqual(planFinish(notOpen, 0), { kind: 'notOpen', tokens: [t1, t2] });
    // beside a token that did compare (and failed), only that one keeps its attempt
    const mixed = [{ kind: 'notOpen', token: t1 }, { kind: 'invalid', token: t2, challenges: [] }] as Classification[];
    assert.deepEqual(planFinish(mixed, 0), { kind: 'wrongFirstFactor', reason: 'wrongPin', detail: 'wrong otp pin -1', challenges: [], compared: [t2] });
  });
});

describe('answer', () => {
  const base: CheckOutcome = fail('wrongOtp', 'wrong otp value');
  test('unavailable, accept, challenge, reject — in that order', () => {
    assert.deepEqual(answer({ ...base, unavailable: true, reason: 'userStoreUnavailable' }), { kind: 'unavailable' });
    assert.deepEqual(answer({ ...base, ok: true, reason: 'authenticated' }), { kind: 'accept' });
    const c = { transactionId: '1', message: 'm', serial: 's', tokenType: 'sms', description: '', expiresAt: 0 };
    assert.deepEqual(answer({ ...base, challenges: [c], reason: 'challengeCreated' }), { kind: 'challenge', challenges: [c] });
    assert.deepEqual(answer(base), { kind: 'reject', error: 'wrong otp value' });
    assert.deepEqual(answer({ ...base, error: 'account locked' }), { kind: 'reject', error: 'account locked' });
  });
  test('fail() keeps the reason and takes the audit text unless the audit names another', () => {
    assert.deepEqual(fail('replay', 'wrong otp value', { notAGuess: true, audit: { serial: 'S' } }), {
      ok: false, reason: 'replay', challenges: [], notAGuess: true, audit: { actionDetail: 'wrong otp value', serial: 'S' },
    });
    assert.equal(fail('replay', 'a', { audit: { actionDetail: 'b' } }).audit.actionDetail, 'b');
  });
  test('every reason is documented', () => {
    for (const [k, doc] of Object.entries(REASONS)) assert.ok(/^[a-z][A-Za-z]+$/.test(k) && doc.length > 10, k);
  });
});

/** A policy port answering from a table of `scope/action` → value (per realm when a function). */
function policiesOf(values: Record<string, string | ((s: PolicySubject) => string | undefined)>): PolicyPort {
  const value = (scope: string, action: string, s: PolicySubject) => {
    const v = values[`${scope}/${action}`];
    return typeof v === 'function' ? v(s) : v;
  };
  return { value, has: (sc, a, s) => value(sc, a, s) !== undefined, anyPolicy: () => false, adminAllowed: () => ({ allowed: true, realms: '*' }) };
}

describe('policy reads', () => {
  const subject: PolicySubject = { login: 'alice', realm: 'staff', client: '127.0.0.1' };
  test('otppin: names and numbers; the strictest of several realms (1, 0, 3, 2)', () => {
    assert.equal(otppinMode(policiesOf({}), subject), 0);
    assert.equal(otppinMode(policiesOf({ 'authentication/otppin': 'password' }), subject), 1);
    assert.equal(otppinMode(policiesOf({ 'authentication/otppin': '2' }), subject), 2);
    const byRealm: Record<string, string> = { a: 'only_otp', b: 'ignore_pin', c: 'token_pin' };
    const perRealm = policiesOf({ 'authentication/otppin': (s) => byRealm[s.realm] });
    assert.equal(otppinMode(perRealm, subject, ['a', 'b']), 3);
    assert.equal(otppinMode(perRealm, subject, ['a', 'b', 'c']), 0);
  });
  test('authorization tokentype and serial refuse tokens outside them; a bad expression refuses', () => {
    const t = token('hmac', { serial: 'OATH0001' });
    assert.equal(tokenRefusal(policiesOf({ 'authorization/tokentype': 'HOTP totp' }), t, subject), null, 'aliases count');
    assert.equal(tokenRefusal(policiesOf({ 'authorization/tokentype': 'totp' }), t, subject)?.reason, 'tokenTypeNotAuthorized');
    assert.equal(tokenRefusal(policiesOf({ 'authorization/serial': '^OATH' }), t, subject), null);
    assert.equal(tokenRefusal(policiesOf({ 'authorization/serial': '^TOTP' }), t, subject)?.reason, 'serialNotAuthorized');
    assert.equal(tokenRefusal(policiesOf({ 'authorization/serial': '(' }), t, subject)?.reason, 'serialNotAuthorized');
  });
  test('challenge_response lists the type or *; sms/email always are', () => {
    assert.equal(challengeCapable(policiesOf({}), token('hmac'), subject), false);
    assert.equal(challengeCapable(policiesOf({ 'authentication/challenge_response': 'totp hmac' }), token('hmac'), subject), true);
    assert.equal(challengeCapable(policiesOf({ 'authentication/challenge_response': '*' }), token('pw'), subject), true);
    assert.equal(challengeCapable(policiesOf({}), token('email'), subject), true);
  });
});

describe('token screen', () => {
  const user: DirectoryUser = { login: 'alice', realm: 'staff', resolver: 'r1', resolverClass: 'passwd', userId: 'u1', info: { username: 'alice', userid: 'u1' } };
  const subject: PolicySubject = { login: 'alice', realm: 'staff', client: '127.0.0.1' };
  test('candidates, locked tokens apart, and the last reason a token was left out', () => {
    const ok = token('hmac');
    const locked = token('totp', { failCount: 10 });
    const inactive = token('pw', { active: false });
    const otherRealm = token('spass', { realms: ['other'] });
    const s = screenTokens([ok, locked, otherRealm, inactive], user, policiesOf({}), subject, 0);
    assert.deepEqual(s.candidates, [ok]);
    assert.deepEqual(s.locked, [locked]);
    assert.deepEqual(s.skipped, { reason: 'tokenDisabled', detail: 'Token inactive' });
    assert.equal(screenTokens([inactive, otherRealm], user, policiesOf({}), subject, 0).skipped.reason, 'realmMismatch');
    assert.equal(screenTokens([token('hmac', { type: 'motp' })], user, policiesOf({}), subject, 0).skipped.reason, 'unknownTokenType');
    assert.equal(screenTokens([ok], user, policiesOf({ 'authorization/tokentype': 'totp' }), subject, 0).skipped.reason, 'tokenTypeNotAuthorized');
    assert.deepEqual(screenTokens([], user, policiesOf({}), subject, 0).skipped, { reason: 'noTokenFound', detail: 'no token found' });
  });
});

describe('token usage limits', () => {
  const user: DirectoryUser = { login: 'alice', realm: 'staff', resolver: 'r1', resolverClass: 'passwd', userId: 'u1', info: { username: 'alice', userid: 'u1' } };
  const subject: PolicySubject = { login: 'alice', realm: 'staff', client: '127.0.0.1' };
  const at = Date.UTC(2026, 5, 15, 12, 0);
  test('times: ISO 8601, LinOTP\'s DD/MM/YY HH:MM, Unix seconds; nonsense is null', () => {
    assert.equal(parseUsageTime('2026-06-15T12:00:00Z'), at);
    assert.equal(parseUsageTime('2026-06-15T12:00'), at);
    assert.equal(parseUsageTime('2026-06-15T14:00+02:00'), at);
    assert.equal(parseUsageTime('15/06/26 12:00'), at);
    assert.equal(parseUsageTime(String(at / 1000)), at);
    for (const bad of ['31/02/26 12:00', 'tomorrow', '2026-13-45', '15/06/26 25:00', '']) assert.equal(parseUsageTime(bad), null, bad);
  });
  test('outside the validity period, past the count limits, or unreadable: refused before any secret', () => {
    const info = (i: Record<string, string>) => token('hmac', { info: i });
    assert.equal(usageRefusal(info({ validity_period_start: '2026-06-15T12:00:01Z' }), at)?.reason, 'tokenNotValid');
    assert.equal(usageRefusal(info({ validity_period_start: '2026-06-15T12:00:00Z' }), at), null);
    assert.equal(usageRefusal(info({ validity_period_end: '2026-06-15T12:00:00Z' }), at)?.reason, 'tokenNotValid');
    assert.equal(usageRefusal(info({ validity_period_end: '2026-06-15T12:00:01Z' }), at), null);
    assert.equal(usageRefusal(info({ validity_period_end: 'garbage' }), at)?.reason, 'tokenNotValid', 'fail closed');
    assert.equal(usageRefusal(token('hmac', { info: { count_auth_max: '3' }, countAuth: 3 }), at)?.reason, 'tokenUsageExceeded');
    assert.equal(usageRefusal(token('hmac', { info: { count_auth_max: '3' }, countAuth: 2 }), at), null);
    assert.equal(usageRefusal(token('hmac', { info: { count_auth_success_max: '1' }, countAuthSuccess: 1 }), at)?.reason, 'tokenUsageExceeded');
    assert.equal(usageRefusal(token('hmac', { info: { count_auth_success_max: 'x' } }), at)?.reason, 'tokenUsageExceeded', 'fail closed');
    const s = screenTokens([info({ validity_period_end: '2026-01-01T00:00:00Z' })], user, policiesOf({}), subject, at);
    assert.deepEqual(s.candidates, []);
    assert.deepEqual(s.skipped, { reason: 'tokenNotValid', detail: 'validity period expired' });
  });
});
