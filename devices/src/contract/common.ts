/** Small schema builders shared by the contract's REST and Socket.IO schemas. */
import { Type, type TLiteral, type TNull, type TSchema, type TUnion } from '@sinclair/typebox';

/** `T | null`. */
export const Nullable = <T extends TSchema>(t: T): TUnion<[T, TNull]> => Type.Union([t, Type.Null()]);

/** A union of string literals from a `const` list (its static type is the list's element type). */
export const OneOf = <T extends string>(values: readonly T[], options: { description?: string } = {}): TUnion<TLiteral<T>[]> =>
  Type.Union(values.map((v) => Type.Literal(v)), options);

/** Epoch milliseconds (every time in a JSON body, CONTRACT 5). */
export const EpochMs = (description?: string) => Type.Number(description ? { description } : {});
