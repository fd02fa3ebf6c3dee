import type { OutgoingMessage } from '../../delivery/types.ts';
import type { Token } from '../../tokens/types.ts';
import type { DirectoryUser, PolicyPort, PolicySubject } from '../ports.ts';
import type { CheckRequest } from '../outcome.ts';

/**
 * The two out-of-band channels (SMS and e-mail): where the code goes, the text
 * it is sent in, how long it lives and which config keys and policies say so.
 */

/** How one channel (sms / email) differs from the other. */
export interface Channel {
  type: 'sms' | 'email';
  /** Config keys of the code's validity and the resend blocking (seconds) and of the prompt. */
  validityKey: 'SMSProviderTimeout' | 'EmailChallengeValidityTime';
  blockingKey: 'SMSBlockingTimeout' | 'EmailBlockingTimeout';
  promptKey: 'SMS_CHALLENGE_PROMPT' | 'EMAIL_CHALLENGE_PROMPT';
  sentMessage: string;
  resentMessage: string;
  providerAction: 'sms_provider' | 'email_provider';
  /** Where the code goes: the token's stored destination, or the user store's with the dynamic policy. */
  destination(token: Token, user: DirectoryUser | null, policies: PolicyPort, subject: PolicySubject): string | undefined;
  /** The message with the code in it (or `<otp>` tags the provider fills from `otp`). */
  compose(args: { token: Token; code: string; transactionId: string; request: CheckRequest; user: DirectoryUser | null; policies: PolicyPort; subject: PolicySubject; to: string }): OutgoingMessage;
}

/** The longest a code may live, whatever the configuration says (NIST 800-63B 3.1.3.2 spirit; security B.2 #16). */
export const MAX_VALIDITY_SECONDS = 600;
const MAX_REQUEST_TEXT = 480;

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

export const smsChannel: Channel = {
  type: 'sms',
  validityKey: 'SMSProviderTimeout',
  blockingKey: 'SMSBlockingTimeout',
  promptKey: 'SMS_CHALLENGE_PROMPT',
  sentMessage: 'sms submitted',
  resentMessage: 'sms with otp already submitted',
  providerAction: 'sms_provider',
  destination(token, user, policies, subject) {
    if (user?.info.mobile && policies.has('authentication', 'sms_dynamic_mobile_number', subject)) return user.info.mobile;
    return str(token.info.phone);
  },
  compose({ token, code, transactionId, request, user, policies, subject, to }) {
    // spec 5.2: smstext policy, overridden by the request's data/message unless enforce_smstext.
    const policyText = str(policies.value('authentication', 'smstext', subject));
    const enforced = policyText !== undefined && policies.has('authentication', 'enforce_smstext', subject);
    const requestText = request.message !== undefined && request.message.length <= MAX_REQUEST_TEXT ? str(request.message) : undefined;
    let text = (!enforced && requestText) || policyText || '<otp>';
    if (!text.includes('<otp>')) text = `<otp> ${text}`;
    text = text.replaceAll('<otp>', code).replaceAll('<serial>', token.serial).replaceAll('<transactionid>', transactionId);
    return { channel: 'sms', to, text, otp: code, serial: token.serial, user: user?.login, realm: user?.realm ?? subject.realm, client: request.client, userInfo: user?.info };
  },
};

export const emailChannel: Channel = {
  type: 'email',
  validityKey: 'EmailChallengeValidityTime',
  blockingKey: 'EmailBlockingTimeout',
  promptKey: 'EMAIL_CHALLENGE_PROMPT',
  sentMessage: 'e-mail sent successfully',
  resentMessage: 'e-mail with otp already submitted',
  providerAction: 'email_provider',
  destination(token, user, policies, subject) {
    if (user?.info.email && policies.has('authentication', 'dynamic_email_address', subject)) return user.info.email;
    return str(token.info.email_address);
  },
  compose({ token, code, request, user, policies, subject, to }) {
    // The provider renders `<otp>`, `<serial>` and `${field}` (spec 6.8); it gets the code as `otp`.
    const text = str(policies.value('authentication', 'emailtext', subject)) ?? '<otp>';
    const subjectLine = str(policies.value('authentication', 'emailsubject', subject));
    return {
      channel: 'email', to, text, ...(subjectLine ? { subject: subjectLine } : {}), otp: code, serial: token.serial,
      user: user?.login, realm: user?.realm ?? subject.realm, client: request.client, userInfo: user?.info,
    };
  },
};

export const CHANNELS: Record<'sms' | 'email', Channel> = { sms: smsChannel, email: emailChannel };
