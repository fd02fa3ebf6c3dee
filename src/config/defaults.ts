/**
 * The defaults of the runtime configuration live in its catalogue (config/catalogue.ts);
 * this module keeps the helpers older callers import from here.
 */

/** Upper bounds that keep one request's work bounded (security B.2 item 5). */
export { LIMITS } from '../tokens/limits.ts';

export { isTrue } from './values.ts';
