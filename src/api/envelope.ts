import { Errors, OtpdError } from '../errors.ts';
import { isDatabaseUnavailable } from '../store/unavailable.ts';

export const API_VERSION = '2.0802';
export const OTPD_VERSION = '0.1.0';

/** LinOTP's JSON-RPC envelope, in its key order. */
export function resultEnvelope(value: unknown, id: number, detail?: Record<string, unknown>, status = true): Record<string, unknown> {
  const body: Record<string, unknown> = {
    jsonrpc: API_VERSION,
    result: { status, value },
    version: `otpd ${OTPD_VERSION}`,
    versionNumber: OTPD_VERSION,
    id,
  };
  if (detail && Object.keys(detail).length > 0) body.detail = detail;
  return body;
}

export function errorEnvelope(err: OtpdError, id: number): Record<string, unknown> {
  return {
    jsonrpc: API_VERSION,
    result: { status: false, error: { code: err.code, message: `ERR${err.code}: ${err.message}` } },
    version: `otpd ${OTPD_VERSION}`,
    versionNumber: OTPD_VERSION,
    id,
  };
}

/** LinOTP serialises with indent=3 and ": " separators; JSON.stringify(x, null, 3) matches. */
export function serialise(body: unknown): string {
  return JSON.stringify(body, null, 3);
}

/** Any thrown value as an OtpdError that is safe to show (no stack, no internals); a database outage is ERR2008. */
export function toOtpdError(e: unknown): OtpdError {
  if (e instanceof OtpdError) return e;
  if (isDatabaseUnavailable(e)) return Errors.databaseUnavailable();
  return Errors.internal();
}
