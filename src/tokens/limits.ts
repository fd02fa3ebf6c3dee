/** Upper bounds of the token settings an administrator may choose (per token or as a default). */
export const LIMITS = {
  maxCountWindow: 100,
  maxSyncWindow: 10000,
  maxTotpWindowSteps: 2,
  maxMaxFail: 100,
};
