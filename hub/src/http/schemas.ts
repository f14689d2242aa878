import { Type } from '@sinclair/typebox';

// The error body and the list page are the contract's (CONTRACT 5).
export { ErrorBody, Page as Items } from '@gridlink/devices/contract';

/** Standard error responses for a route, so OpenAPI lists them. */
export const errors = (...codes: number[]) => Object.fromEntries(codes.map((c) => [c, Type.Ref('Error')]));

export const TimeQuery = Type.Union([Type.Number(), Type.String()], { description: 'epoch ms or ISO-8601' });
