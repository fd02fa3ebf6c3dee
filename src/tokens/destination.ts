/** Token info keys that say where out-of-band codes go. */
const DESTINATION_KEYS = ['phone', 'email_address'] as const;

/** True when the phone number or e-mail address in token info differs (open challenges must close). */
export function destinationChanged(before: Record<string, string>, after: Record<string, string>): boolean {
  return DESTINATION_KEYS.some((k) => (before[k] ?? '') !== (after[k] ?? ''));
}
