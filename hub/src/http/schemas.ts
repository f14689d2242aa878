import { Type, type TSchema } from '@sinclair/typebox';

export const ErrorBody = Type.Object({ code: Type.String(), message: Type.String(), details: Type.Optional(Type.Unknown()) }, { $id: 'Error' });

export const Items = <T extends TSchema>(item: T) => Type.Object({ items: Type.Array(item), nextCursor: Type.Optional(Type.String()) });

/** Standard error responses for a route, so OpenAPI lists them. */
export const errors = (...codes: number[]) => Object.fromEntries(codes.map((c) => [c, Type.Ref('Error')]));

export const TimeQuery = Type.Union([Type.Number(), Type.String()], { description: 'epoch ms or ISO-8601' });
