import type { Api } from './route.ts';
import { register as admin } from './admin.ts';
import { register as administrators } from './administrators.ts';
import { register as audit } from './audit.ts';
import { register as delivery } from './delivery.ts';
import { register as demo } from './demo.ts';
import { register as authPages } from './auth-pages.ts';
import { register as health } from './health.ts';
import { register as helpdesk } from './helpdesk.ts';
import { register as loadtokens } from './loadtokens.ts';
import { register as metrics } from './metrics.ts';
import { register as policy } from './policy.ts';
import { register as radius } from './radius.ts';
import { register as system } from './system.ts';
import { register as users } from './users.ts';
import { register as userservice } from './userservice.ts';
import { register as validate } from './validate.ts';

/** Every API area; an area adds its `register` here. */
export async function registerAllRoutes(api: Api): Promise<void> {
  for (const register of [health, metrics, validate, admin, helpdesk, administrators, system, policy, users, delivery, audit, authPages, radius, userservice, demo, loadtokens]) register(api);
}
