import { Errors, type OtpdError } from '../errors.ts';
import { errorEnvelope } from './envelope.ts';
import type { Services } from '../services.ts';
import { answer } from '../validation/answer.ts';
import type { CheckOutcome, CheckRequest } from '../validation/outcome.ts';
import { challengeDetail, simplecheckText } from './challenge-detail.ts';
import { defineRoutes, ok, text, type Api, type RouteContext, type RouteResult } from './route.ts';

function request(ctx: RouteContext, entry: CheckRequest['entry']): CheckRequest {
  const p = ctx.params;
  // spec 1.3: a `challenge` parameter drops every other option (LinOTP's _check)
  const dropOptions = p.has('challenge');
  return {
    user: p.get('user'),
    realm: p.get('realm'),
    pass: p.get('pass'),
    serial: dropOptions ? undefined : p.get('serial'),
    transactionId: dropOptions ? undefined : (p.get('transactionid') ?? p.get('state')),
    client: ctx.client,
    tokenType: dropOptions ? undefined : p.get('token_type'),
    message: dropOptions ? undefined : (p.get('data') ?? p.get('message')),
    challenge: p.get('challenge'),
    entry,
  };
}

function recordAudit(ctx: RouteContext, out: CheckOutcome): void {
  Object.assign(ctx.audit, {
    success: out.ok,
    user: out.audit.user,
    realm: out.audit.realm,
    serial: out.audit.serial,
    tokenType: out.audit.tokenType,
    actionDetail: out.audit.actionDetail,
    info: out.audit.info,
    reason: out.reason,
  });
}

/** spec 1.3.9: detail_on_success / detail_on_fail (authorization scope). */
function detailFor(services: Services, ctx: RouteContext, out: CheckOutcome): Record<string, unknown> | undefined {
  const a = answer(out);
  if (a.kind === 'challenge') return challengeDetail(a.challenges);
  const policies = services.policies;
  if (!out.user) return undefined;
  const subject = { login: out.user.login, realm: out.user.realm, resolver: out.user.resolver, client: ctx.client, userInfo: out.user.info };
  if (a.kind === 'accept' && policies.has('authorization', 'detail_on_success', subject)) {
    return { user: out.user.info, realm: out.user.realm, is_linotp_admin: false, tokentype: out.audit.tokenType ?? '', serial: out.audit.serial ?? '' };
  }
  if (a.kind === 'reject' && policies.has('authorization', 'detail_on_fail', subject)) return { error: a.error };
  return undefined;
}

/**
 * A user store that cannot be asked is an error in the envelope (code 2004), and so is otpd's
 * own database (code 2008), so a RADIUS module or portal can tell an outage from a wrong
 * password; the details stay in the log.
 */
const unavailableError = (out: CheckOutcome): OtpdError => (out.reason === 'databaseUnavailable' ? Errors.databaseUnavailable() : Errors.userStoreUnavailable());
/** The errors the validate routes answer as errors: outages; every other failure is "false". */
const isOutage = (err: OtpdError) => err.code === Errors.userStoreUnavailable.code || err.code === Errors.databaseUnavailable.code;

/** The validation call of /validate/check and its audit, for every face that offers it (also /auth/check). */
export async function checkAndAudit(ctx: RouteContext, entry: CheckRequest['entry']): Promise<CheckOutcome> {
  // a failure's floor holds the answer, not the audit row: the row commits with the failure's writes
  const out = await ctx.services.validation.check(request(ctx, entry), ctx.hold);
  recordAudit(ctx, out);
  return out;
}

async function validateCheck(ctx: RouteContext, entry: CheckRequest['entry']): Promise<CheckOutcome> {
  const out = await checkAndAudit(ctx, entry);
  if (out.unavailable) throw unavailableError(out);
  return out;
}

export function register(api: Api): void {
  defineRoutes(api, [
    {
      path: '/validate/check',
      handler: async (ctx) => {
        const out = await validateCheck(ctx, 'check');
        return ok(out.ok, detailFor(ctx.services, ctx, out));
      },
      // spec 0: internal failures answer status true, value false; a store outage is an error
      onError: (err) => (isOutage(err) ? errorResult(err, 0) : ok(false)),
    },
    {
      path: '/validate/simplecheck',
      handler: async (ctx) => {
        const out = await validateCheck(ctx, 'simplecheck');
        return text(simplecheckText(answer(out)));
      },
      onError: () => text(':-('),
    },
    {
      path: '/validate/samlcheck',
      handler: async (ctx) => {
        const out = await validateCheck(ctx, 'samlcheck');
        const attributes: Record<string, string> = {};
        if (out.ok && out.user && ctx.services.config.bool('allowSamlAttributes')) {
          for (const k of ['username', 'surname', 'mobile', 'phone', 'givenname', 'email'] as const) attributes[k] = out.user.info[k] ?? '';
        }
        return ok({ auth: out.ok, attributes }, detailFor(ctx.services, ctx, out));
      },
      onError: (err) => (isOutage(err) ? errorResult(err, 0) : ok({ auth: false, attributes: {} })),
    },
    {
      path: '/validate/check_s',
      handler: async (ctx) => {
        const p = ctx.params;
        const serial = p.get('serial');
        if (!serial && !p.get('user')) throw Errors.missingParameter({ name: 'serial' });
        // with a user and no serial: that user's single token. Unknown user, no token or several
        // answer like a wrong password (B.2 #9): status true, value false, same work.
        const out = await ctx.services.validation.check({ ...request(ctx, 'check_s'), serial, user: serial ? undefined : p.get('user') }, ctx.hold);
        recordAudit(ctx, out);
        if (out.unavailable) throw unavailableError(out);
        return ok(out.ok, challengeDetail(out.challenges));
      },
      // spec 1.3.3: errors here are status false, value false; a store outage is error 2004
      onError: (err) => (isOutage(err) ? errorResult(err, 0) : { kind: 'json', value: false, status: false }),
    },
    {
      // spec 1.3.6: polling; value true only for the owner's first factor (per otppin)
      path: '/validate/check_status',
      handler: async (ctx) => {
        const p = ctx.params;
        const tid = p.get('transactionid') ?? p.get('state');
        if (!tid) throw Errors.missingParameter({ name: 'transactionid' });
        const pass = p.require('pass');
        const { outcome, transactions } = await ctx.services.validation.checkStatus({ transactionId: tid, pass, user: p.get('user') || undefined, realm: p.get('realm'), serial: p.get('serial') || undefined, client: ctx.client }, ctx.hold);
        recordAudit(ctx, outcome);
        ctx.audit.success = transactions.length > 0;
        if (outcome.unavailable) throw unavailableError(outcome);
        if (transactions.length === 0) return ok(false);
        const out: Record<string, unknown> = {};
        for (const { challenge: c, token, status } of transactions) {
          out[c.transactionId] = {
            received_count: c.receivedCount, received_tan: c.receivedCount > 0, valid_tan: c.validTan,
            message: c.message, status, token: { serial: token.serial, type: token.type },
          };
        }
        return ok(true, { transactions: out });
      },
      onError: (err) => (isOutage(err) ? errorResult(err, 0) : ok(false)),
    },
    {
      path: '/validate/check_t',
      handler: async (ctx) => {
        const p = ctx.params;
        const tid = p.get('transactionid') ?? p.get('state');
        const pass = p.get('pass');
        if (pass === undefined) return ok({ value: false, failcount: 0 }, { failure: "Missing parameter: 'pass'" });
        if (!tid) return ok({ value: false, failcount: 0 }, { failure: 'missing parameter: state or transactionid!' });
        const challenges = await ctx.services.challenges.byTransaction(tid.split('.')[0]);
        const open = challenges.filter((c) => c.status === 'open');
        if (open.length === 0) return ok({ value: false, failcount: 0 }, { value: false, failure: `No challenge for transaction '${tid}' found` });
        const serial = open[0].serial;
        const [login, realm] = open[0].subject ? splitSubject(open[0].subject) : [undefined, undefined];
        const out = await ctx.services.validation.check({ user: login, realm, pass, serial, transactionId: tid, client: ctx.client, entry: 'check' }, ctx.hold);
        recordAudit(ctx, out);
        const token = await ctx.services.tokens.repository.bySerial(serial);
        const failcount = token?.failCount ?? 0;
        return ok({ value: out.ok, failcount }, { value: out.ok, failcount, token_type: token?.type ?? '', serial });
      },
    },
  ]);
}

function errorResult(err: OtpdError, id: number): RouteResult {
  return { kind: 'raw', body: errorEnvelope(err, id) };
}

function splitSubject(subject: string): [string, string] {
  const at = subject.lastIndexOf('@');
  return [subject.slice(0, at), subject.slice(at + 1)];
}

