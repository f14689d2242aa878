import { Type } from '@sinclair/typebox';
import { ROLES, type Auth } from '../../auth/index.js';
import type { App } from '../app.js';
import { authenticate, requireRole } from '../guards.js';
import { errors, Items } from '../schemas.js';

export const UserSchema = Type.Object({
  id: Type.String(),
  username: Type.String(),
  role: Type.Union(ROLES.map((r) => Type.Literal(r))),
  regionId: Type.Union([Type.String(), Type.Null()]),
  displayName: Type.String(),
});

export function authRoutes(app: App, deps: { auth: Auth }): void {
  const { auth } = deps;
  app.post('/auth/login', {
    schema: {
      tags: ['auth'],
      security: [],
      summary: 'Log in and receive a bearer token',
      body: Type.Object({ username: Type.String({ minLength: 1, maxLength: 64 }), password: Type.String({ minLength: 1, maxLength: 256 }) }),
      response: { 200: Type.Object({ token: Type.String(), user: UserSchema }), ...errors(400, 401) },
    },
  }, async (req) => auth.login(req.body.username, req.body.password));

  app.get('/auth/me', {
    preHandler: [authenticate(auth)],
    schema: { tags: ['auth'], response: { 200: Type.Object({ sub: Type.String(), username: Type.String(), role: Type.String(), regionId: Type.Union([Type.String(), Type.Null()]), exp: Type.Number() }), ...errors(401) } },
  }, async (req) => req.principal!);

  app.post('/users', {
    preHandler: [authenticate(auth), requireRole('admin')],
    schema: {
      tags: ['users'],
      body: Type.Object({
        username: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9._@-]+$' }),
        password: Type.String({ minLength: 8, maxLength: 256 }),
        role: Type.Union(ROLES.map((r) => Type.Literal(r))),
        regionId: Type.Optional(Type.Union([Type.String(), Type.Null()])),
        displayName: Type.Optional(Type.String({ maxLength: 64 })),
      }),
      response: { 201: UserSchema, ...errors(400, 401, 403, 409) },
    },
  }, async (req, reply) => reply.status(201).send(await auth.createUser(req.body)));

  app.get('/users', {
    preHandler: [authenticate(auth), requireRole('admin')],
    schema: { tags: ['users'], response: { 200: Items(UserSchema), ...errors(401, 403) } },
  }, async () => ({ items: await auth.listUsers() }));
}
