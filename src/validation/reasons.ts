/**
 * Why a validation ended as it did: one stable code per outcome the pipeline tells
 * apart, written to the audit row's `reason` column (the human text stays in
 * `action_detail`). Codes are for searches, alerts and tests; they never change
 * meaning. Each entry's text is its documentation.
 */
export const REASONS = {
  // accepted
  authenticated: 'A token matched: its first factor (per otppin) and its OTP.',
  passOnUserNotFound: 'The user does not exist and config PassOnUserNotFound accepts that.',
  passOnUserNoToken: 'The user owns no token and config PassOnUserNoToken accepts that.',
  passthru: 'The user owns no token; policy passthru checked the user-store password, which was right.',
  passOnNoToken: 'The user owns no token and policy passOnNoToken accepts that.',
  forwarded: 'Policy forward_server: the old server of a switch-over accepted the forwarded request.',
  // challenges (value false, with a challenge to answer)
  forwardedChallenge: 'Policy forward_server: the old server answered the forwarded request with a challenge.',
  challengeCreated: 'A challenge was created (PIN-only request, challenge_response, sms/email, trigger_sms).',
  tokenAutoenrolled: 'The user owned no token: autoenrollment created one and sent its first code.',
  autoenrollJoined: 'A parallel first login enrolled the user a moment ago: its open challenge is the answer.',
  challengeResent: 'RADIUS: an empty answer to an open out-of-band challenge asked for the code again.',
  // refused before any secret was checked
  missingUserOrSerial: 'The request names neither a user nor a serial.',
  missingPass: 'The request has no `pass`.',
  userNotFound: 'No user store knows the user (the same work as a wrong password is done).',
  tokenOwnerNotFound: 'The serial names a token whose owner is no longer in the user store.',
  ownerMismatch: 'The serial does not belong to the user the request names.',
  noTokenFound: 'No token to check: an unknown serial, or check_s for a user without a token.',
  notSingleToken: 'check_s with a user who owns more than one token.',
  notAuthorized: 'The authorization policies (authorize) do not let the user or client authenticate.',
  realmMismatch: 'The token is not in the realm of the user.',
  unknownTokenType: 'The token has a type this otpd does not know.',
  tokenDisabled: 'The token is disabled (inactive).',
  tokenNotValid: 'The token is outside its validity period (validityPeriodStart / validityPeriodEnd): it neither authenticates nor gets a challenge.',
  tokenUsageExceeded: 'The token reached its countAuthMax (attempts) or countAuthSuccessMax (successful logins): it neither authenticates nor gets a challenge.',
  tokenTypeNotAuthorized: 'Policy authorization/tokentype does not allow the token type.',
  serialNotAuthorized: 'Policy authorization/serial does not match the serial.',
  tokenLocked: 'Every token that could match has reached its fail counter limit.',
  accountThrottled: 'The account is inside a refusal window after consecutive failures.',
  accountLocked: 'The account reached the hard limit of consecutive failures (an administrator resets it).',
  credentialsVerified: 'Self-service login under mfa_login: the user-store password was right; the second factor is still owed.',
  otpRequired: 'Self-service login: the password was right; the user has no out-of-band token to send a code to, so the current code of an app token is asked for.',
  noOpenChallenge: 'RADIUS: an empty answer, but the user has no open out-of-band challenge to resend.',
  noSuchTransaction: 'check_status: the transaction has no challenge of the user or serial named (or does not exist); the same work and answer as a wrong pass.',
  transactionStatus: 'check_status: the pass matched the first factor of the challenge\'s owner; the transaction\'s challenges are shown (no attempt is spent, nothing is reset).',
  // refused after a secret was checked
  wrongOtp: 'The first factor matched, the OTP did not (wrong, missing or already used).',
  wrongPin: 'Nothing matched: the token PIN was wrong for every token that was compared.',
  wrongPassword: 'As wrongPin, under otppin=1: the user-store password was wrong.',
  replay: 'The OTP was the value the token accepted last: a parallel request used it first (its conditional write lost, or it finished before this one read the token); no attempt is spent.',
  challengeNotOpen: 'The request answers a transaction none of the tokens has an open challenge of (answered before, expired, or another user\'s): nothing was compared, no attempt is spent.',
  challengeAlreadyAnswered: 'The answer matched, but a parallel request closed its challenge first; no attempt is spent.',
  multipleMatches: 'More than one token matched the password.',
  challengeFailed: 'A challenge was asked for but could not be created (no destination, send limit, send failed).',
  forwardedRefused: 'Policy forward_server: the old server refused the forwarded request.',
  forwardUnavailable: 'Policy forward_server: no old server answered within its timeout (an outage, like an unreachable user store).',
  noTokenAssigned: 'The user owns no token and nothing else (autoenrollment, passthru, passOnNoToken) applies.',
  autoenrollFailed: 'The user owns no token and autoenrollment refused (wrong password, no destination, send failed).',
  passthruWrongPassword: 'The user owns no token; policy passthru checked the user-store password, which was wrong.',
  // errors
  userStoreUnavailable: 'A user store could not be asked: an error, never "authenticated"; no attempt is spent.',
  databaseUnavailable: 'otpd\'s own database could not be used (stopped, restarting, connection cut, disk full): an error (ERR2008, RADIUS silent), never "authenticated"; no attempt is spent.',
  requestRefused: 'An otpd error ended the request (its message is the action detail).',
  internalError: 'An unexpected failure; the cause is in the log.',
} as const;

/** One of {@link REASONS}. */
export type Reason = keyof typeof REASONS;
