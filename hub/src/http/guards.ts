/**
 * Route guards. Every /api/v1 route except login and device ingest runs
 * `authenticate`; `requireRole` narrows by role. Region checks happen per
 * object in the handlers through `auth.canSee`.
 */
import type { FastifyReply, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify';
import type { Auth, Principal, Role } from '../auth/index.js';
import { Errors } from '../core/errors.js';

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
}

export function bearerToken(req: FastifyRequest): string | null {
  const h = req.headers.authorization;
  if (h?.startsWith('Bearer ')) return h.slice(7);
  const q = (req.query as Record<string, unknown> | undefined)?.token;
  return typeof q === 'string' ? q : null;
}

export function authenticate(auth: Auth): preHandlerAsyncHookHandler {
  return async (req: FastifyRequest, _reply: FastifyReply) => {
    const token = bearerToken(req);
    if (!token) throw Errors.unauthorized();
    req.principal = auth.verify(token);
  };
}

export function requireRole(...roles: Role[]): preHandlerAsyncHookHandler {
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

/** epoch ms or ISO-8601 (CONTRACT 5) */
export function parseTime(v: unknown, fallback: number): number {
  if (v === undefined || v === null || v === '') return fallback;
  if (typeof v === 'number') return v;
  const s = String(v);
  if (/^\d+$/.test(s)) return Number(s);
  const t = Date.parse(s);
  if (Number.isNaN(t)) throw Errors.validation(`not a time: ${s}`);
  return t;
}
