// Who is calling: every route but GET /health and the payment provider's callback (authenticated by its
// HMAC signature) needs an API key from API_KEYS, sent as `Authorization: Bearer <key>` or `X-API-Key: <key>`.
// Keys are compared in constant time: each presented key is hashed and compared with every configured key's
// hash, so neither a key's length nor its first differing byte shows in the answer's timing.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler, Response } from 'express';
import type { ApiKey, Role } from '../config';
import { HttpError } from './errors';

export interface Caller {
  role: Role;
  /** The client application or person the key belongs to (API_KEYS' principal). */
  principal: string;
}

const digest = (value: string) => createHash('sha256').update(value, 'utf8').digest();

/** The key a request presents, or undefined; a malformed Authorization header is refused. */
function presentedKey(authorization: string | undefined, apiKeyHeader: string | undefined): string | undefined {
  if (authorization !== undefined) {
    const match = /^Bearer +(\S+) *$/i.exec(authorization);
    if (!match) throw unauthorized('the Authorization header must be "Bearer <API key>"');
    if (apiKeyHeader !== undefined && apiKeyHeader !== match[1]) throw unauthorized('Authorization and X-API-Key name different keys');
    return match[1];
  }
  return apiKeyHeader === undefined ? undefined : apiKeyHeader.trim();
}

export const unauthorized = (message: string) => new HttpError(401, 'unauthorized', message);

/** Authenticates the request and keeps the caller in `res.locals.caller`; 401 without a valid key. */
export function authenticate(apiKeys: readonly ApiKey[]): RequestHandler {
  const known = apiKeys.map((entry) => ({ hash: digest(entry.key), caller: { role: entry.role, principal: entry.principal } }));
  return (req, res, next) => {
    let key: string | undefined;
    try {
      key = presentedKey(req.get('authorization'), req.get('x-api-key'));
    } catch (error) {
      return next(error);
    }
    if (!key) return next(unauthorized('an API key is required: send Authorization: Bearer <key> (or X-API-Key: <key>)'));
    const hash = digest(key);
    let caller: Caller | undefined;
    // No early exit: every configured key is compared, whichever matches.
    for (const entry of known) {
      if (timingSafeEqual(hash, entry.hash) && !caller) caller = entry.caller;
    }
    if (!caller) return next(unauthorized('the API key is not valid'));
    res.locals.caller = caller;
    next();
  };
}

export function callerOf(res: Response): Caller {
  const caller = res.locals.caller as Caller | undefined;
  if (!caller) throw unauthorized('an API key is required');
  return caller;
}

/** Lets only these roles through; 403 for the others. */
export function allow(...roles: Role[]): RequestHandler {
  return (_req, res, next) => {
    const caller = res.locals.caller as Caller | undefined;
    if (!caller) return next(unauthorized('an API key is required'));
    if (!roles.includes(caller.role)) {
      return next(new HttpError(403, 'forbidden', `this needs the ${roles.join(' or ')} role; your key is ${caller.role} ${caller.principal}`));
    }
    next();
  };
}

/**
 * Whether the caller may see an order placed by `ownerClientId`: staff (manager, operator) see every order, a
 * client only its own. Orders placed before clients were recorded (null) are for staff only.
 */
export function maySee(caller: Caller, ownerClientId: string | null | undefined): boolean {
  return caller.role !== 'client' || (ownerClientId != null && ownerClientId === caller.principal);
}
