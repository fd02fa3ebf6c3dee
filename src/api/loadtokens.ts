import { Errors } from '../errors.ts';
import { TokenImporter } from '../import/tokens.ts';
import { registerMultipart, uploadedFile } from './multipart.ts';
import { defineRoutes, ok, type Api } from './route.ts';

/**
 * `/admin/loadtokens`: LinOTP's seed-file upload. `file` (a multipart upload, or the file's text
 * as a parameter), `type` `pskc` or `oathcsv`, for an encrypted PSKC file `psk` (the pre-shared
 * AES key, hex) or `password` (PBKDF2), optional `tokenrealm` (comma list). The whole file is
 * stored or nothing (docs/migration.md). Gated by the admin policy action `import`.
 */
export function register(api: Api): void {
  registerMultipart(api.app);
  defineRoutes(api, [
    {
      path: '/admin/loadtokens',
      methods: ['POST'],
      policy: { scope: 'admin', action: 'import' },
      handler: async (ctx) => {
        const p = ctx.params;
        const upload = uploadedFile(ctx.request, 'file');
        const text = upload ? upload.content.toString('utf8') : p.get('file');
        if (text === undefined) throw Errors.missingParameter({ name: 'file' });
        const type = p.require('type').toLowerCase();
        const pskHex = p.get('psk');
        if (pskHex !== undefined && !/^([0-9a-fA-F]{32}|[0-9a-fA-F]{48}|[0-9a-fA-F]{64})$/.test(pskHex)) {
          throw Errors.invalidParameter({ name: 'psk', why: 'expected an AES key of 16, 24 or 32 bytes in hex' });
        }
        const realms = p.list('tokenrealm').map((r) => r.toLowerCase());
        const { services } = ctx;
        const importer = new TokenImporter({ tokens: services.tokens, keyring: services.keyring, config: services.config, clock: services.clock });
        const result = await importer.importSeedFile(type, text, {
          psk: pskHex === undefined ? undefined : Buffer.from(pskHex, 'hex'),
          password: p.get('password'),
        }, { realms, scope: { realms: ctx.admin?.realms ?? '*' } });
        ctx.audit.serial = [...result.created, ...result.counterAdvanced].join(',').slice(0, 500);
        ctx.audit.info = `${type}: ${result.created.length} imported, ${result.kept.length} already present`;
        return ok({ value: true, imported: result.created.length }, {
          created: result.created, kept: result.kept, counterAdvanced: result.counterAdvanced,
        });
      },
    },
  ]);
}
