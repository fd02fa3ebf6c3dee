// Importing this module registers every built-in token type.
import './hmac.ts';
import './totp.ts';
import './static.ts';
import './sms.ts';
import './email.ts';
