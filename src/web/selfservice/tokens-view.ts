/** A token of the login's second step (`/userservice/login` detail.tokenList). */
export interface PortalToken {
  serial: string;
  type: string;
  description: string;
  destination?: string;
}

/** A row of the "My tokens" page. */
export interface TokenRow {
  serial: string;
  type: string;
  /** What the token is, in the user's words. */
  kind: string;
  description: string;
  destination?: string;
  active: boolean;
  locked: boolean;
  pending: boolean;
  /** Sends a code (SMS/e-mail) rather than showing one (apps, key fobs). */
  sendsCode: boolean;
  hasCodes: boolean;
  status: string;
  lastUsed?: string;
}

const KIND: Record<string, string> = {
  HMAC: 'Key fob or app (HOTP)', TOTP: 'Authenticator app (TOTP)', sms: 'Text message (SMS)', email: 'E-mail',
  spass: 'Static password', pw: 'Password token',
};

/** `/userservice/context`'s `tokenArray` (LinOTP dictionaries plus `otpd.*`) as rows for the page. */
export function tokenRows(tokenArray: Record<string, unknown>[]): TokenRow[] {
  return tokenArray.map((t) => {
    const type = String(t['LinOtp.TokenType']);
    const active = t['LinOtp.Isactive'] === true;
    const locked = t['otpd.locked'] === true;
    const pending = t['otpd.pending'] === true;
    const last = String(t['LinOtp.LastAuthSuccess'] ?? '');
    return {
      serial: String(t['LinOtp.TokenSerialnumber']),
      type,
      kind: KIND[type] ?? type,
      description: String(t['LinOtp.TokenDesc'] ?? ''),
      destination: typeof t['otpd.destination'] === 'string' ? t['otpd.destination'] : undefined,
      active, locked, pending,
      sendsCode: type === 'sms' || type === 'email',
      hasCodes: type === 'HMAC' || type === 'TOTP',
      status: pending ? 'waiting for its first code' : locked ? 'locked' : active ? 'active' : 'disabled',
      ...(last ? { lastUsed: last } : {}),
    };
  });
}
