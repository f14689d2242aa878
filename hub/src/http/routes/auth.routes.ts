import { Type } from '@sinclair/typebox';
// The user, login and token claims as REST carries them are the contract's (CONTRACT 5).
import { CreateUserBody, IdParams, LoginBody, LoginResponse, Me, PasswordBody, UpdateUserBody, User as UserSchema } from '@gridlink/devices/contract';
import { GLOBAL, type Auth } from '../../auth/index.js';
import type { App } from '../app.js';
import { principal, requireRole } from '../guards.js';
import { errors, Items } from '../schemas.js';

/**
 * Login, the caller's own session, and user lifecycle. Users are city-wide
 * objects: only an admin without a region manages them. Every change to
 * role, region, enabled flag or password ends the user's sessions at once
 * (REST and open sockets).
 */
export function authRoutes(app: App, deps: { auth: Auth }): void {
  const { auth } = deps;
  const cityAdmin = [requireRole('admin'), async (req: Parameters<typeof principal>[0]) => auth.assertCanWrite(principal(req), null, GLOBAL)];

  app.post('/auth/login', {
    schema: {
      tags: ['auth'],
      security: [],
      summary: 'Log in and receive a bearer token (throttled per account and per address: 429 LOGIN_THROTTLED)',
      body: LoginBody,
      response: { 200: LoginResponse, ...errors(400, 401, 429, 503) },
    },
  }, async (req, reply) => {
    try {
      return await auth.login(req.body.username, req.body.password, req.ip);
    } catch (err) {
      const retry = (err as { details?: { retryAfterS?: number } }).details?.retryAfterS;
      if (retry) reply.header('retry-after', String(retry));
      throw err;
    }
  });

  app.get('/auth/me', {
    schema: { tags: ['auth'], response: { 200: Me, ...errors(401) } },
  }, async (req) => principal(req));

  app.post('/auth/logout', {
    schema: { tags: ['auth'], summary: 'End every session of the caller (all tokens issued so far stop working)', response: { 204: Type.Null(), ...errors(401) } },
  }, async (req, reply) => {
    await auth.revoke(principal(req).sub);
    return reply.status(204).send(null);
  });

  app.post('/users', {
    onRequest: cityAdmin,
    schema: {
      tags: ['users'],
      body: CreateUserBody,
      response: { 201: UserSchema, ...errors(400, 401, 403, 409) },
    },
  }, async (req, reply) => reply.status(201).send(await auth.createUser(req.body)));

  app.get('/users', {
    onRequest: cityAdmin,
    schema: { tags: ['users'], response: { 200: Items(UserSchema), ...errors(401, 403) } },
  }, async () => ({ items: await auth.listUsers() }));

  app.patch('/users/:id', {
    onRequest: cityAdmin,
    schema: {
      tags: ['users'],
      summary: 'Change role, region, display name or enabled flag; a change of access ends the user\'s sessions at once',
      params: IdParams,
      body: UpdateUserBody,
      response: { 200: UserSchema, ...errors(400, 401, 403, 404, 409) },
    },
  }, async (req) => auth.updateUser(req.params.id, req.body, principal(req)));

  app.post('/users/:id/password', {
    onRequest: cityAdmin,
    schema: {
      tags: ['users'],
      summary: 'Reset a user\'s password; the user\'s sessions end at once',
      params: IdParams,
      body: PasswordBody,
      response: { 204: Type.Null(), ...errors(400, 401, 403, 404) },
    },
  }, async (req, reply) => {
    await auth.setPassword(req.params.id, req.body.password);
    return reply.status(204).send(null);
  });

  app.delete('/users/:id', {
    onRequest: cityAdmin,
    schema: { tags: ['users'], summary: 'Delete a user; the user\'s sessions end at once', params: IdParams, response: { 204: Type.Null(), ...errors(401, 403, 404, 409) } },
  }, async (req, reply) => {
    await auth.deleteUser(req.params.id, principal(req));
    return reply.status(204).send(null);
  });
}
