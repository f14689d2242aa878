/** Users, roles and login (CONTRACT 5 `/auth`, `/users`). */
import { Type, type Static } from '@sinclair/typebox';
import { Nullable, OneOf } from './common.js';
import { ROLES } from './values.js';

export const RoleT = OneOf(ROLES);

/** A user as REST returns it. */
export const User = Type.Object({
  id: Type.String(),
  username: Type.String(),
  role: RoleT,
  regionId: Nullable(Type.String({ description: 'grid id at any level the user is scoped to; null = the whole city' })),
  displayName: Type.String(),
  enabled: Type.Optional(Type.Boolean()),
});
export type User = Static<typeof User>;

export const LoginBody = Type.Object({ username: Type.String({ minLength: 1, maxLength: 64 }), password: Type.String({ minLength: 1, maxLength: 256 }) }, { additionalProperties: false });
export type LoginBody = Static<typeof LoginBody>;

export const LoginResponse = Type.Object({ token: Type.String(), user: User });
export type LoginResponse = Static<typeof LoginResponse>;

/** `GET /auth/me`: the claims of the caller's token. */
export const Me = Type.Object({ sub: Type.String(), username: Type.String(), role: Type.String(), regionId: Nullable(Type.String()), exp: Type.Number() });
export type Me = Static<typeof Me>;

const Password = Type.String({ minLength: 8, maxLength: 256, description: 'at least 8 characters, not the username, not a common password' });
const RegionId = Nullable(Type.String({ minLength: 1, maxLength: 64 }));

/** `POST /users` (a city-wide admin). */
export const CreateUserBody = Type.Object({
  username: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9._@-]+$' }),
  password: Password,
  role: RoleT,
  regionId: Type.Optional(RegionId),
  displayName: Type.Optional(Type.String({ maxLength: 64 })),
}, { additionalProperties: false });
export type CreateUserBody = Static<typeof CreateUserBody>;

/** `PATCH /users/{id}`: a change of access ends the user's sessions at once. */
export const UpdateUserBody = Type.Object({
  role: Type.Optional(RoleT),
  regionId: Type.Optional(RegionId),
  displayName: Type.Optional(Type.String({ maxLength: 64 })),
  enabled: Type.Optional(Type.Boolean()),
}, { additionalProperties: false });
export type UpdateUserBody = Static<typeof UpdateUserBody>;

/** `POST /users/{id}/password`. */
export const PasswordBody = Type.Object({ password: Password }, { additionalProperties: false });
export type PasswordBody = Static<typeof PasswordBody>;
