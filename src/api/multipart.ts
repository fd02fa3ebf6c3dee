/**
 * `multipart/form-data` bodies (RFC 7578) as plain parameters, for LinOTP clients that upload
 * a file (`/system/importPolicy` with the policy file in the `file` field). Every part, file or
 * not, becomes a string parameter of its `name` (UTF-8); the body is bounded by the app's body
 * limit, so nothing is streamed to disk.
 */
import type { FastifyInstance } from 'fastify';

const MAX_PARTS = 200;

/** A malformed body: answered as error 2101 (HTTP 400) by the app's error handler. */
class MultipartError extends Error {
  readonly statusCode = 400;
}
const bad = (why: string) => new MultipartError(why);

/** The parts of a multipart body: name → value (a list when a name repeats). */
export function parseMultipart(body: Buffer, contentType: string): Record<string, string | string[]> {
  const m = /;\s*boundary=(?:"([^"]{1,70})"|([^\s;]{1,70}))/i.exec(contentType);
  if (!m) throw bad('multipart body without a boundary');
  const delimiter = Buffer.from(`--${m[1] ?? m[2]}`);
  const out: Record<string, string | string[]> = {};
  let pos = body.indexOf(delimiter);
  if (pos < 0) throw bad('multipart body without its boundary');
  let parts = 0;
  for (;;) {
    pos += delimiter.length;
    if (body.subarray(pos, pos + 2).toString() === '--') return out;
    if (body.subarray(pos, pos + 2).toString() !== '\r\n') throw bad('malformed multipart boundary line');
    pos += 2;
    const headerEnd = body.indexOf('\r\n\r\n', pos);
    const next = body.indexOf(Buffer.concat([Buffer.from('\r\n'), delimiter]), pos);
    if (headerEnd < 0 || next < 0 || headerEnd > next) throw bad('malformed multipart part');
    if (++parts > MAX_PARTS) throw bad(`more than ${MAX_PARTS} parts`);
    const headers = body.subarray(pos, headerEnd).toString('utf8');
    const disposition = /^content-disposition:\s*form-data\s*;(.*)$/im.exec(headers);
    const name = disposition && /(?:^|;)\s*name="([^"]*)"/i.exec(disposition[1]);
    if (!name) throw bad('multipart part without a form-data name');
    const value = body.subarray(headerEnd + 4, next).toString('utf8');
    const key = name[1];
    const before = out[key];
    out[key] = before === undefined ? value : Array.isArray(before) ? [...before, value] : [before, value];
    pos = next + 2;
  }
}

/** Registers the parser on the app (before the routes). */
export function registerMultipart(app: FastifyInstance): void {
  app.addContentTypeParser('multipart/form-data', { parseAs: 'buffer' }, (request, body, done) => {
    try {
      done(null, parseMultipart(body as Buffer, String(request.headers['content-type'] ?? '')));
    } catch (e) {
      done(e as Error, undefined);
    }
  });
}
