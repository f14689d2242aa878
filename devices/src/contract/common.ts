/** Small schema builders shared by the contract's REST and Socket.IO schemas. */
import { Type, type Static, type TLiteral, type TNull, type TSchema, type TUnion } from '@sinclair/typebox';

/** `T | null`. */
export const Nullable = <T extends TSchema>(t: T): TUnion<[T, TNull]> => Type.Union([t, Type.Null()]);

/** A union of string literals from a `const` list (its static type is the list's element type). */
export const OneOf = <T extends string>(values: readonly T[], options: { description?: string } = {}): TUnion<TLiteral<T>[]> =>
  Type.Union(values.map((v) => Type.Literal(v)), options);

/** Epoch milliseconds (every time in a JSON body, CONTRACT 5). */
export const EpochMs = (description?: string) => Type.Number(description ? { description } : {});

/** A list answer (CONTRACT 5): `items`, and `nextCursor` when more pages follow (send it back as `cursor`). */
export const Page = <T extends TSchema>(item: T) => Type.Object({ items: Type.Array(item), nextCursor: Type.Optional(Type.String()) });
export type Page<T> = { items: T[]; nextCursor?: string };

/** Every error body (CONTRACT 5): a stable code clients match on and a message; a 5xx never carries internals. */
export const ErrorBody = Type.Object({ code: Type.String(), message: Type.String(), details: Type.Optional(Type.Unknown()) }, { $id: 'Error' });
export type ErrorBody = Static<typeof ErrorBody>;

/** A time in a query string: epoch ms or ISO-8601 (CONTRACT 5). */
export const TimeQuery = Type.Union([Type.Number(), Type.String()], { description: 'epoch ms or ISO-8601' });
export type TimeQuery = Static<typeof TimeQuery>;

/** `/{id}` of most REST objects (users, cases, rules, alarms, departments). */
export const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });
export type IdParams = Static<typeof IdParams>;
