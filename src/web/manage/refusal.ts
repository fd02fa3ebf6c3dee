import type { FastifyRequest } from 'fastify';
import { Errors, OtpdError } from '../../errors.ts';
import type { View } from './kit.ts';
import type { PageCall } from './session.ts';

/**
 * A page whose reads the API refuses (an admin policy that does not grant `system read`, a
 * user store that cannot be asked) shows the refusal as a page of this UI, with the API's
 * message, instead of failing: 403 for a policy refusal, 503 for an unreachable store.
 */
export function orRefusal(render: (call: PageCall, request: FastifyRequest) => Promise<View>): (call: PageCall, request: FastifyRequest) => Promise<View> {
  return async (call, request) => {
    try {
      return await render(call, request);
    } catch (e) {
      if (!(e instanceof OtpdError)) throw e;
      const status = e.code === Errors.notAllowed.code ? 403 : e.code === Errors.userStoreUnavailable.code || e.code === Errors.databaseUnavailable.code ? 503 : 400;
      return {
        template: 'manage/stores-notfound', status,
        data: { title: status === 403 ? 'Not allowed' : 'This page cannot be shown', message: `${e.message[0]!.toUpperCase()}${e.message.slice(1)}.`, back: '/manage/', backLabel: 'Dashboard' },
      };
    }
  };
}
