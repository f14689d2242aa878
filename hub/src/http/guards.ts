/**
 * Route guards. Every route under /api/v1 is authenticated in `onRequest`,
 * before its body is read, by the hook `authenticateAll` that hub.ts
 * installs on the API scope; a route opts out only by declaring an OpenAPI
 * `security` without `bearer` (login, health, device ingest). Bearer tokens
 * come from the Authorization header only. Routes that serve media to
 * <img>/<video> (config `media: true`) also take a short-lived media token
 * `?media=` bound to their own path. `requireRole` narrows by role and runs
 * in `onRequest` too, so a body too large for the caller is never read.
 * Region checks are `auth.assertCanWrite` / `auth.canSee` per object.
 */
import type { FastifyReply, FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import type { Auth, Principal, Role } from '../auth/index.js';
import { Errors } from '../core/errors.js';
import type { Ingest } from '../ingest/index.js';

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
  interface FastifyContextConfig {
    /** The route serves an image or video and accepts `?media=` (see auth.signMedia). */
    media?: boolean;
    /** The route is public although its schema does not say so (system routes whose protection is configurable). */
    public?: boolean;
  }
}

export function bearerToken(req: FastifyRequest): string | null {
  const h = req.headers.authorization;
  return h?.startsWith('Bearer ') ? h.slice(7) : null;
}

/** The path a media token is bound to: the URL without its query. */
export const mediaPath = (url: string) => url.split('?')[0]!;

/** True when the route declares itself public: an OpenAPI `security` without `bearer`. */
export function isPublicRoute(req: FastifyRequest): boolean {
  const opts = req.routeOptions;
  if (opts.config?.public) return true;
  const security = (opts.schema as { security?: Array<Record<string, unknown>> } | undefined)?.security;
  return Array.isArray(security) && !security.some((s) => 'bearer' in s);
}

export function authenticate(auth: Auth): onRequestAsyncHookHandler {
  return async (req: FastifyRequest, _reply: FastifyReply) => {
    if (req.principal) return;
    const token = bearerToken(req);
    if (token) {
      req.principal = await auth.verify(token);
      return;
    }
    if (req.routeOptions.config?.media) {
      const m = new URLSearchParams(req.url.split('?')[1] ?? '').get('media');
      if (m) {
        req.principal = await auth.verifyMedia(m, mediaPath(req.url));
        return;
      }
    }
    throw Errors.unauthorized();
  };
}

/** The API scope's onRequest hook: every route that is not public is authenticated before its body is read. */
export function authenticateAll(auth: Auth): onRequestAsyncHookHandler {
  const check = authenticate(auth);
  return async function (this: unknown, req, reply) {
    // No route matched: the 404 handler answers without revealing anything.
    if (!req.routeOptions.url) return;
    if (isPublicRoute(req)) return;
    await check.call(this as never, req, reply);
  };
}

export function requireRole(...roles: Role[]): onRequestAsyncHookHandler {
  return async (req: FastifyRequest) => {
    if (!req.principal) throw Errors.unauthorized();
    if (req.principal.role !== 'admin' && !roles.includes(req.principal.role)) throw Errors.forbidden(`requires role ${roles.join(' or ')}`);
  };
}

/** The principal of a request that passed `authenticate`. */
export function principal(req: FastifyRequest): Principal {
  if (!req.principal) throw Errors.unauthorized();
  return req.principal;
}

/** Latest time the database and JavaScript both represent: 9999-12-31T23:59:59.999Z. */
export const MAX_TIME = 253_402_300_799_999;
export const MIN_TIME = -62_167_219_200_000;

/** epoch ms or ISO-8601 (CONTRACT 5), within years 0..9999. */
export function parseTime(v: unknown, fallback: number): number {
  if (v === undefined || v === null || v === '') return fallback;
  let t: number;
  if (typeof v === 'number') t = v;
  else {
    const s = String(v);
    t = /^-?\d+(\.\d+)?$/.test(s) ? Number(s) : Date.parse(s);
    if (Number.isNaN(t)) throw Errors.validation(`not a time: ${s.slice(0, 64)}`, { reason: 'TIME_INVALID' });
  }
  if (!Number.isFinite(t) || t < MIN_TIME || t > MAX_TIME) throw Errors.timeOutOfRange(`time out of range (years 0 to 9999): ${String(v).slice(0, 64)}`);
  return t;
}

// ---- devices over HTTP (ingest, OsmAnd) ------------------------------------------------------

/** Parses HTTP Basic `deviceId:secret`. */
export function basicCredentials(header: string | undefined): { id: string; secret: string } | null {
  if (!header?.startsWith('Basic ')) return null;
  const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
  const i = decoded.indexOf(':');
  return i > 0 ? { id: decoded.slice(0, i), secret: decoded.slice(i + 1) } : null;
}

/**
 * Takes one message from the device's budget (the same bucket its MQTT
 * connections use); over budget answers 429 with Retry-After in seconds.
 */
export function admitDevice(ingest: Ingest, deviceId: string, reply: { header(k: string, v: string): unknown }): void {
  const waitMs = ingest.budget.tryTake(deviceId);
  if (waitMs === 0) return;
  ingest.reject(deviceId, 'rate_limited', 'HTTP request over the device budget');
  reply.header('retry-after', String(Math.ceil(waitMs / 1000)));
  throw Errors.rateLimited(`device ${deviceId} is over its message budget; retry after ${Math.ceil(waitMs / 1000)} s`);
}
