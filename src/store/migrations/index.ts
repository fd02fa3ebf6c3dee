import type { Migration, MigrationProvider } from 'kysely';
import * as core from './0001_core.ts';
import * as users from './0100_users.ts';
import * as policy from './0200_policy.ts';
import * as delivery from './0300_delivery.ts';
import * as radius from './0400_radius.ts';
import * as enrollment from './0500_enrollment.ts';
import * as accountAttempts from './0600_account_attempts.ts';
import * as auditKey from './0610_audit_key.ts';
import * as adminAuth from './0620_admin_auth.ts';
import * as auditRequestId from './0630_audit_request_id.ts';
import * as auditReason from './0640_audit_reason.ts';
import * as auditSearch from './0650_audit_search.ts';
import * as userSessions from './0660_user_sessions.ts';
import * as userSessionState from './0661_user_session_state.ts';
import * as demo from './0700_demo.ts';

/**
 * Every migration, in order. Areas append theirs (`0100_users`, `0200_policy`,
 * `0300_delivery`, `0400_radius`, …); names sort in application order.
 */
export const migrations: Record<string, Migration> = {
  '0001_core': core,
  '0100_users': users,
  '0200_policy': policy,
  '0300_delivery': delivery,
  '0400_radius': radius,
  '0500_enrollment': enrollment,
  '0600_account_attempts': accountAttempts,
  '0610_audit_key': auditKey,
  '0620_admin_auth': adminAuth,
  '0630_audit_request_id': auditRequestId,
  '0640_audit_reason': auditReason,
  '0650_audit_search': auditSearch,
  '0660_user_sessions': userSessions,
  '0661_user_session_state': userSessionState,
  '0700_demo': demo,
};

export const migrationProvider: MigrationProvider = {
  getMigrations: async () => migrations,
};
