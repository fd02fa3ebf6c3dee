import { SeedFileError, type SeedToken } from './types.ts';

/**
 * OATH CSV: one token a line, `serial, seed (hex), type, otplen, time step`; only the first two
 * are required (type `hotp` by default, `totp` too; otplen 6; time step 30 seconds for TOTP).
 * Blank lines and lines starting with `#` are skipped. Any other malformed line refuses the
 * whole file, naming its line number (never its seed).
 */
export function parseOathCsv(text: string): SeedToken[] {
  const out: SeedToken[] = [];
  text.split(/\r?\n/).forEach((line, index) => {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return;
    const where = `line ${index + 1}`;
    const cells = trimmed.split(',').map((c) => c.trim());
    if (cells.length > 5) throw new SeedFileError(`${where}: more than 5 columns (serial, seed, type, otplen, time step)`);
    const [serial = '', seedHex = '', typeCell = '', otplenCell = '', stepCell = ''] = cells;
    if (serial === '') throw new SeedFileError(`${where}: no serial`);
    if (!/^([0-9a-fA-F]{2})+$/.test(seedHex)) throw new SeedFileError(`${where} (${serial}): the seed is not hex of whole bytes`);
    const typeName = (typeCell || 'hotp').toLowerCase();
    const type = typeName === 'hotp' || typeName === 'hmac' ? 'hmac' : typeName === 'totp' ? 'totp' : undefined;
    if (!type) throw new SeedFileError(`${where} (${serial}): type '${typeCell}' is not supported (hotp, totp)`);
    if (otplenCell !== '' && !/^\d{1,2}$/.test(otplenCell)) throw new SeedFileError(`${where} (${serial}): otplen is not a number`);
    if (stepCell !== '' && !/^\d{1,4}$/.test(stepCell)) throw new SeedFileError(`${where} (${serial}): time step is not a number`);
    if (type === 'hmac' && stepCell !== '') throw new SeedFileError(`${where} (${serial}): a time step for an HOTP token`);
    out.push({
      serial, type, secret: Buffer.from(seedHex, 'hex'), otplen: otplenCell === '' ? 6 : Number(otplenCell), hashlib: 'sha1', counter: 0,
      timeStep: type === 'totp' ? (stepCell === '' ? 30 : Number(stepCell)) : undefined, description: '',
    });
  });
  if (out.length === 0) throw new SeedFileError('the file holds no token');
  return out;
}
