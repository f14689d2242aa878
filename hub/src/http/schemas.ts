import { Type } from '@sinclair/typebox';

// The error body, the list page and a query-string time are the contract's (CONTRACT 5).
export { ErrorBody, Page as Items, TimeQuery } from '@gridlink/devices/contract';

/** Standard error responses for a route, so OpenAPI lists them. */
export const errors = (...codes: number[]) => Object.fromEntries(codes.map((c) => [c, Type.Ref('Error')]));
