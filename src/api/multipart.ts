import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Params } from './params.ts';

/**
 * `multipart/form-data` bodies (LinOTP's uploads: `/admin/loadtokens`' and
 * `/system/importPolicy`'s `file`). Plain fields become the request's parameters like a form
 * post; a part with a `filename` is a file, kept aside and read with {@link uploadedFile}, and
 * also a parameter when it fits one (≤ Params.MAX_FILE_VALUE, e.g. a policy file), so a file
 * may be larger than a parameter value. Uploads are bounded: {@link MAX_UPLOAD_BYTES} per body,
 * 50 parts.
 */
export const MAX_UPLOAD_BYTES = 2 * 1024 * 1024;
const MAX_PARTS = 50;

export interface UploadedFile {
  filename: string;
  content: Buffer;
}

/** A malformed multipart body: answered as ERR2101 (invalid request) with HTTP 400 by the app's error handler. */
export class MultipartError extends Error {
  readonly statusCode = 400;
}

const files = new WeakMap<FastifyRequest, Map<string, UploadedFile>>();

/** The file uploaded under this field name, if the request was multipart and had one. */
export function uploadedFile(request: FastifyRequest, name: string): UploadedFile | undefined {
  return files.get(request)?.get(name);
}

function dispositionParam(header: string, name: string): string | undefined {
  const m = new RegExp(`(?:^|;)\\s*${name}="([^"]*)"`, 'i').exec(header) ?? new RegExp(`(?:^|;)\\s*${name}=([^;\\s]+)`, 'i').exec(header);
  return m?.[1];
}

/** Splits a multipart body into fields and files; throws MultipartError for a malformed body. */
export function parseMultipart(body: Buffer, contentType: string): { fields: Record<string, string>; files: Map<string, UploadedFile> } {
  const boundary = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  const b = boundary?.[1] ?? boundary?.[2];
  if (!b) throw new MultipartError('multipart body without a boundary');
  const delimiter = Buffer.from(`--${b}`);
  const fields: Record<string, string> = {};
  const out = new Map<string, UploadedFile>();
  let pos = body.indexOf(delimiter);
  if (pos < 0) throw new MultipartError('multipart body without its boundary');
  let parts = 0;
  for (;;) {
    pos += delimiter.length;
    if (body.subarray(pos, pos + 2).toString() === '--') break;
    if (body.subarray(pos, pos + 2).toString() !== '\r\n') throw new MultipartError('malformed multipart boundary line');
    pos += 2;
    const next = body.indexOf(Buffer.concat([Buffer.from('\r\n'), delimiter]), pos);
    if (next < 0) throw new MultipartError('multipart body ends inside a part');
    if (++parts > MAX_PARTS) throw new MultipartError(`more than ${MAX_PARTS} multipart parts`);
    const part = body.subarray(pos, next);
    const headerEnd = part.indexOf('\r\n\r\n');
    if (headerEnd < 0) throw new MultipartError('multipart part without headers');
    const headers = part.subarray(0, headerEnd).toString('utf8').split('\r\n');
    const disposition = headers.find((h) => /^content-disposition:/i.test(h));
    const name = disposition && dispositionParam(disposition.slice(disposition.indexOf(':') + 1), 'name');
    if (!name) throw new MultipartError('multipart part without a field name');
    const content = Buffer.from(part.subarray(headerEnd + 4));
    const filename = dispositionParam(disposition.slice(disposition.indexOf(':') + 1), 'filename');
    if (filename !== undefined) {
      out.set(name, { filename, content });
      if (content.length <= Params.MAX_FILE_VALUE) fields[name] = content.toString('utf8');
    } else fields[name] = content.toString('utf8');
    pos = next + 2;
  }
  return { fields, files: out };
}

/** Lets the app take multipart bodies (once per app). */
export function registerMultipart(app: FastifyInstance): void {
  if (app.hasContentTypeParser('multipart/form-data')) return;
  app.addContentTypeParser('multipart/form-data', { parseAs: 'buffer', bodyLimit: MAX_UPLOAD_BYTES }, (request, body, done) => {
    try {
      const parsed = parseMultipart(body as Buffer, String(request.headers['content-type'] ?? ''));
      files.set(request, parsed.files);
      done(null, parsed.fields);
    } catch (e) {
      done(e as Error, undefined);
    }
  });
}
