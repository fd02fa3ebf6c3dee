import smpp, { type PDU, type Session } from 'smpp';
import { Type, type Static } from 'typebox';
import { asNumber, ConfigValidationError, defineProvider, NumberLike } from '../config.ts';
import type { DeliveryReceipt, ProbeResult, Provider, ProviderContext, SendResult } from '../types.ts';
import { plainError } from '../../util/plain-errors.ts';
import { commonSmsKeys, messageText, preparePhone } from './common.ts';

/** SMPPSMSProvider config (spec 6.6). */
export const smppSmsSchema = Type.Object(
  {
    server: Type.String({ minLength: 1 }),
    port: Type.Optional(NumberLike('default 5100')),
    system_id: Type.String({ minLength: 1 }),
    password: Type.String({ secret: true }),
    system_type: Type.Optional(Type.String({ default: '' })),
    source_addr: Type.String({ minLength: 1 }),
    source_addr_ton: Type.Optional(NumberLike('default 1')),
    source_addr_npi: Type.Optional(NumberLike('default 1')),
    dest_addr_ton: Type.Optional(NumberLike('default 1')),
    dest_addr_npi: Type.Optional(NumberLike('default 1')),
    target_encoding: Type.Optional(Type.String({ default: 'ISO8859-1', description: 'ISO8859-1 (data_coding 3), UCS2/UTF-16 (8) or ASCII (1); text Latin-1 cannot hold goes as UCS2' })),
    registered_delivery: Type.Optional(Type.Union([Type.Boolean(), NumberLike()], { description: 'request delivery receipts (default 1)' })),
    ...commonSmsKeys,
  },
  { additionalProperties: false },
);

export type SmppSmsConfig = Static<typeof smppSmsSchema>;

const ESME = smpp.errors;
/** submit_sm statuses that mean "later" rather than "no". */
const TRANSIENT_STATUS = new Set([ESME.ESME_RTHROTTLED, ESME.ESME_RMSGQFUL, ESME.ESME_RSYSERR, ESME.ESME_RX_T_APPN, ESME.ESME_RUNKNOWNERR]);
/** Statuses about the destination number: refusals that say nothing about the SMSC's health. */
const DESTINATION_STATUS = new Set([ESME.ESME_RINVDSTADR, ESME.ESME_RINVDSTTON, ESME.ESME_RINVDSTNPI, ESME.ESME_RINVNUMDESTS, ESME.ESME_RX_P_APPN, ESME.ESME_RX_R_APPN]);

export interface EncodedPart {
  dataCoding: number;
  esmClass: number;
  bytes: Buffer;
}

function statusName(status: number): string {
  const name = Object.entries(ESME).find(([, v]) => v === status)?.[0];
  return `${name ?? 'status'} 0x${status.toString(16).padStart(4, '0')}`;
}

/**
 * Encodes a text into one or more short_message payloads. Latin-1 (data
 * coding 3) holds 140 bytes in one SMS and 134 per part of a long one
 * (6 bytes of concatenation header); UCS2 70/67 characters; ASCII (1) 160/153.
 */
export function encodeSms(text: string, targetEncoding: string, reference: number): EncodedPart[] {
  const wanted = targetEncoding.toLowerCase().replace(/[^a-z0-9]/g, '');
  let dataCoding: number;
  let units: Buffer[];
  let single: number;
  let part: number;
  const latin1 = [...text].every((c) => c.codePointAt(0)! <= 0xff);
  const ascii = [...text].every((c) => c.codePointAt(0)! < 0x80);
  if ((wanted === 'ascii' || wanted === 'gsm' || wanted === 'ia5') && ascii) {
    dataCoding = 1;
    units = [...text].map((c) => Buffer.from(c, 'ascii'));
    single = 160;
    part = 153;
  } else if (wanted.includes('utf') || wanted.includes('ucs') || !latin1) {
    dataCoding = 8;
    // One unit per code point, so a surrogate pair is never cut in half.
    units = [...text].map((c) => Buffer.from(c, 'utf16le').swap16());
    single = 140;
    part = 134;
  } else {
    dataCoding = 3;
    units = [...text].map((c) => Buffer.from(c, 'latin1'));
    single = 140;
    part = 134;
  }
  const total = units.reduce((n, u) => n + u.length, 0);
  if (total <= single) return [{ dataCoding, esmClass: 0, bytes: Buffer.concat(units) }];
  const chunks: Buffer[] = [];
  let current: Buffer[] = [];
  let size = 0;
  for (const u of units) {
    if (size + u.length > part) {
      chunks.push(Buffer.concat(current));
      current = [];
      size = 0;
    }
    current.push(u);
    size += u.length;
  }
  if (current.length) chunks.push(Buffer.concat(current));
  if (chunks.length > 255) throw new Error('message too long for SMS concatenation');
  return chunks.map((c, i) => ({
    dataCoding,
    esmClass: 0x40,
    bytes: Buffer.concat([Buffer.from([0x05, 0x00, 0x03, reference & 0xff, chunks.length, i + 1]), c]),
  }));
}

/** Reads a delivery receipt from a deliver_sm (TLVs first, then the text form `id:… stat:…`). */
export function parseReceipt(pdu: PDU): DeliveryReceipt | null {
  if (!((pdu.esm_class ?? 0) & 0x04)) return null;
  const sm = pdu.short_message;
  const text = typeof sm === 'string' ? sm : typeof sm?.message === 'string' ? sm.message : Buffer.isBuffer(sm?.message) ? sm.message.toString('latin1') : '';
  const id = (typeof pdu.receipted_message_id === 'string' && pdu.receipted_message_id) || /\bid:(\S+)/i.exec(text)?.[1];
  if (!id) return null;
  const stat = /\bstat:(\w+)/i.exec(text)?.[1]?.toUpperCase();
  const err = /\berr:(\w+)/i.exec(text)?.[1];
  const state = typeof pdu.message_state === 'number' ? pdu.message_state : undefined;
  let status: DeliveryReceipt['status'] | null = null;
  if (state === 2 || stat === 'DELIVRD') status = 'delivered';
  else if ((state !== undefined && [3, 4, 5, 8].includes(state)) || (stat && ['EXPIRED', 'DELETED', 'UNDELIV', 'REJECTD', 'UNKNOWN'].includes(stat))) status = 'failed';
  if (!status) return null;
  return { providerMessageId: id, status, detail: `receipt ${stat ?? `state ${state}`}${err && err !== '000' ? ` err ${err}` : ''}` };
}

class SmppError extends Error {
  constructor(readonly result: SendResult & { kind: 'transient' | 'permanent' }) {
    super(result.reason);
  }
}

function create(config: SmppSmsConfig, ctx: ProviderContext): Provider {
  const host = config.server;
  const port = asNumber(config.port, 5100);
  const refusal = ctx.hosts.refuse(host);
  if (refusal) throw new ConfigValidationError([`config.server: ${refusal}`]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new ConfigValidationError([`config.port: bad port ${port}`]);
  const encoding = config.target_encoding ?? 'ISO8859-1';
  const registered = config.registered_delivery === undefined ? 1 : config.registered_delivery === false ? 0 : config.registered_delivery === true ? 1 : asNumber(config.registered_delivery, 1);
  const receiptListeners: ((r: DeliveryReceipt) => void)[] = [];
  /** Part id → id of the first part, so a receipt for any part finds the message. */
  const partToMessage = new Map<string, string>();
  let reference = Math.floor(Math.random() * 256);

  let session: Session | undefined;
  let binding: Promise<Session> | undefined;
  const pending = new Set<(e: SmppError) => void>();

  const drop = (reason: string) => {
    const s = session;
    session = undefined;
    binding = undefined;
    for (const reject of [...pending]) reject(new SmppError({ kind: 'transient', reason }));
    pending.clear();
    s?.destroy();
  };

  const connectAndBind = (): Promise<Session> =>
    new Promise<Session>((resolve, reject) => {
      let done = false;
      const s = smpp.connect({ host, port, lookup: ctx.hosts.lookup, auto_enquire_link_period: 30_000 });
      const timer = setTimeout(() => finish(new SmppError({ kind: 'transient', reason: `SMPP connect/bind timeout after ${ctx.connectTimeoutMs} ms` })), ctx.connectTimeoutMs);
      const finish = (err?: SmppError) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (err) {
          s.destroy();
          reject(err);
        } else resolve(s);
      };
      s.on('error', (e: NodeJS.ErrnoException) => {
        if (!done) finish(new SmppError(e.code === 'ENOTALLOWED' ? { kind: 'permanent', reason: e.message, providerFault: true } : { kind: 'transient', reason: `SMPP connection error: ${plainError(e)}` }));
        else if (session === s) drop(`SMPP connection error: ${plainError(e)}`);
      });
      s.on('close', () => {
        if (!done) finish(new SmppError({ kind: 'transient', reason: 'SMPP connection closed during bind' }));
        else if (session === s) drop('SMPP connection closed');
      });
      s.on('deliver_sm', (pdu: PDU) => {
        s.send(pdu.response());
        const receipt = parseReceipt(pdu);
        if (!receipt) return;
        const primary = partToMessage.get(receipt.providerMessageId) ?? receipt.providerMessageId;
        for (const l of receiptListeners) l({ ...receipt, providerMessageId: primary });
      });
      s.on('enquire_link', (pdu: PDU) => s.send(pdu.response()));
      s.on('unbind', (pdu: PDU) => {
        s.send(pdu.response());
        if (session === s) drop('SMSC unbound');
      });
      s.on('connect', () => {
        s.bind_transceiver(
          { system_id: config.system_id, password: config.password, system_type: config.system_type ?? '' },
          (resp: PDU) => {
            if (resp.command_status === 0) finish();
            else finish(new SmppError({ kind: 'permanent', reason: `SMPP bind refused: ${statusName(resp.command_status)}`, providerFault: true }));
          },
        );
      });
    });

  const ensureSession = async (): Promise<Session> => {
    if (session) return session;
    binding ??= connectAndBind().then(
      (s) => {
        session = s;
        return s;
      },
      (e) => {
        binding = undefined;
        throw e;
      },
    );
    return binding;
  };

  const submit = (s: Session, options: Record<string, unknown>, signal: AbortSignal): Promise<PDU> =>
    new Promise<PDU>((resolve, reject) => {
      let finished = false;
      const stop = (err?: SmppError, pdu?: PDU) => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        pending.delete(rejecter);
        signal.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve(pdu!);
      };
      const rejecter = (e: SmppError) => stop(e);
      const onAbort = () => {
        stop(new SmppError({ kind: 'transient', reason: 'SMPP submit aborted (timeout)' }));
        // The session state is unknown after a lost response: start afresh next time.
        if (session === s) drop('SMPP submit aborted');
      };
      const timer = setTimeout(onAbort, ctx.timeoutMs);
      pending.add(rejecter);
      signal.addEventListener('abort', onAbort, { once: true });
      if (!s.submit_sm(options, (pdu: PDU) => stop(undefined, pdu))) stop(new SmppError({ kind: 'transient', reason: 'SMPP session not writable' }));
    });

  return {
    async send(message, signal): Promise<SendResult> {
      let parts: EncodedPart[];
      try {
        reference = (reference + 1) & 0xff;
        parts = encodeSms(messageText(message), encoding, reference);
      } catch (e) {
        return { kind: 'permanent', reason: (e as Error).message };
      }
      const destination = preparePhone(message.to, config);
      try {
        const s = await ensureSession();
        const ids: string[] = [];
        for (const p of parts) {
          const resp = await submit(
            s,
            {
              source_addr: config.source_addr,
              source_addr_ton: asNumber(config.source_addr_ton, 1),
              source_addr_npi: asNumber(config.source_addr_npi, 1),
              destination_addr: destination,
              dest_addr_ton: asNumber(config.dest_addr_ton, 1),
              dest_addr_npi: asNumber(config.dest_addr_npi, 1),
              esm_class: p.esmClass,
              data_coding: p.dataCoding,
              registered_delivery: registered,
              short_message: p.bytes,
            },
            signal,
          );
          if (resp.command_status !== 0) {
            const status = resp.command_status;
            const reason = `SMSC refused submit_sm: ${statusName(status)}`;
            if (TRANSIENT_STATUS.has(status)) return { kind: 'transient', reason };
            return { kind: 'permanent', reason, providerFault: !DESTINATION_STATUS.has(status) };
          }
          ids.push(String(resp.message_id ?? ''));
        }
        const primary = ids[0] ?? '';
        for (const id of ids) if (id) partToMessage.set(id, primary);
        while (partToMessage.size > 10_000) partToMessage.delete(partToMessage.keys().next().value!);
        return { kind: 'accepted', ...(primary ? { providerMessageId: primary.slice(0, 128) } : {}) };
      } catch (e) {
        if (e instanceof SmppError) return e.result;
        return { kind: 'transient', reason: `SMPP error: ${(e as Error).message}` };
      }
    },
    async probe(signal): Promise<ProbeResult> {
      try {
        const s = await ensureSession();
        const alive = await new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => resolve(false), ctx.connectTimeoutMs);
          signal.addEventListener('abort', () => resolve(false), { once: true });
          s.enquire_link({}, () => {
            clearTimeout(timer);
            resolve(true);
          });
        });
        return alive ? { ok: true } : { ok: false, reason: 'no enquire_link answer' };
      } catch (e) {
        return { ok: false, reason: (e as Error).message };
      }
    },
    onReceipt(listener) {
      receiptListeners.push(listener);
    },
    async close() {
      const s = session;
      session = undefined;
      binding = undefined;
      if (!s) return;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          s.destroy();
          resolve();
        }, 1000);
        s.unbind({}, () => {
          clearTimeout(timer);
          s.close(() => resolve());
        });
      });
    },
  };
}

export const smppSmsProvider = defineProvider({
  className: 'SMPPSMSProvider',
  aliases: [
    'linotp.provider.smsprovider.SMPPSMSProvider',
    'smsprovider.SMPPSMSProvider.SMPPSMSProvider',
    'smsprovider.SMPPSMSProvider',
    'linotp.provider.smsprovider.SMPPSMSProvider.SMPPSMSProvider',
  ],
  type: 'sms',
  displayName: 'SMPP (SMSC)',
  schema: smppSmsSchema,
  create,
});
