/** Citizen intake (CONTRACT 5 extensions): Open311 GeoReport v2 and 12345 hotline work orders. */
import { Type, type Static } from '@sinclair/typebox';
import { CaseStatusT } from './cases.js';
import { Nullable } from './common.js';

const Photo = Type.String({ minLength: 8, maxLength: 1_400_000, description: 'base64 JPEG or PNG' });
const NullableString = () => Nullable(Type.String());

/** `GET /open311/v2/services.json` items: one service per case category. */
export const Open311Service = Type.Object({
  service_code: Type.String(), service_name: Type.String(), description: Type.String(), metadata: Type.Boolean(), type: Type.String(), keywords: Type.String(), group: Type.String(),
});
export type Open311Service = Static<typeof Open311Service>;

/** `GET /open311/v2/services.json` (no token). */
export const Open311Services = Type.Array(Open311Service);
export type Open311Services = Static<typeof Open311Services>;

/** `POST /open311/v2/requests.json` (integrator): a citizen case; `service_code` is a category code. */
export const Open311RequestBody = Type.Object({
  service_code: Type.String({ minLength: 1, maxLength: 16 }),
  lat: Type.Number({ minimum: -90, maximum: 90 }),
  long: Type.Number({ minimum: -180, maximum: 180 }),
  address_string: Type.Optional(Type.String({ maxLength: 500 })),
  description: Type.Optional(Type.String({ maxLength: 4000 })),
  first_name: Type.Optional(Type.String({ maxLength: 64 })),
  last_name: Type.Optional(Type.String({ maxLength: 64 })),
  phone: Type.Optional(Type.String({ maxLength: 32 })),
  email: Type.Optional(Type.String({ maxLength: 128 })),
  device_id: Type.Optional(Type.String({ maxLength: 128 })),
  account_id: Type.Optional(Type.String({ maxLength: 128 })),
  media: Type.Optional(Photo),
}, { additionalProperties: false });
export type Open311RequestBody = Static<typeof Open311RequestBody>;

/** `POST /open311/v2/requests.json` 201: the request id (the case code) and the token that reads and rates it, once. */
export const Open311Created = Type.Array(Type.Object({ service_request_id: Type.String(), token: Type.String(), service_notice: NullableString(), account_id: NullableString() }));
export type Open311Created = Static<typeof Open311Created>;

/** A service request as GeoReport v2 shows it, with GridLink's workflow status and rating as extensions. */
export const Open311Request = Type.Object({
  service_request_id: Type.String(),
  status: Type.Union([Type.Literal('open'), Type.Literal('closed')]),
  status_notes: Nullable(Type.String()),
  service_name: Type.String(),
  service_code: Type.String(),
  description: Nullable(Type.String()),
  agency_responsible: Nullable(Type.String()),
  service_notice: Type.Null(),
  requested_datetime: Type.String(),
  updated_datetime: Type.String(),
  expected_datetime: Nullable(Type.String()),
  address: Nullable(Type.String()),
  lat: Type.Number(),
  long: Type.Number(),
  media_url: Type.Null(),
  gridlink_status: CaseStatusT,
  gridlink_rating: Nullable(Type.Integer()),
  gridlink_can_rate: Type.Boolean(),
});
export type Open311Request = Static<typeof Open311Request>;

/**
 * `GET /open311/v2/requests/{id}.json` and `POST .../rating.json` 200: a list of
 * one Open311Request. The answer is serialised as built (the OpenAPI document
 * shows an open array); the static type is the request.
 */
export const Open311Requests = Type.Unsafe<Open311Request[]>(Type.Array(Type.Unknown()));

/** `/open311/v2/requests/{id}.json`: the request id is the case code. */
export const Open311RequestParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });
export type Open311RequestParams = Static<typeof Open311RequestParams>;

/** `GET /open311/v2/requests/{id}.json`: only the holder of the token reads the request. */
export const Open311TokenQuery = Type.Object({ token: Type.String({ minLength: 16, maxLength: 64 }) }, { additionalProperties: false });
export type Open311TokenQuery = Static<typeof Open311TokenQuery>;

/** `POST /open311/v2/requests/{id}/rating.json` (extension): the citizen rates a closed request (评价). */
export const Open311RatingBody = Type.Object({ token: Type.String({ minLength: 16, maxLength: 64 }), rating: Type.Integer({ minimum: 1, maximum: 5 }), comment: Type.Optional(Type.String({ maxLength: 2000 })) }, { additionalProperties: false });
export type Open311RatingBody = Static<typeof Open311RatingBody>;

/** `POST /intake/12345` (integrator): a hotline work order; idempotent by `orderNo`. */
export const HotlineOrderBody = Type.Object({
  orderNo: Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' }),
  category: Type.String({ minLength: 1, maxLength: 64, description: 'category code, key or name' }),
  title: Type.Optional(Type.String({ maxLength: 200 })),
  content: Type.String({ minLength: 1, maxLength: 4000 }),
  lat: Type.Number({ minimum: -90, maximum: 90 }),
  lon: Type.Number({ minimum: -180, maximum: 180 }),
  address: Type.Optional(Type.String({ maxLength: 500 })),
  caller: Type.Optional(Type.Object({ name: Type.Optional(Type.String({ maxLength: 64 })), phone: Type.Optional(Type.String({ maxLength: 32 })) }, { additionalProperties: false })),
  receivedAt: Type.Optional(Type.Number({ description: 'epoch ms the hotline took the call' })),
  photos: Type.Optional(Type.Array(Photo, { maxItems: 9 })),
}, { additionalProperties: false });
export type HotlineOrderBody = Static<typeof HotlineOrderBody>;

/** `POST /intake/12345` 200: the case; a resent order answers the same case with `created: false` and no new token. */
export const HotlineOrderResult = Type.Object({ caseId: Type.String(), code: Type.String(), created: Type.Boolean(), token: NullableString() });
export type HotlineOrderResult = Static<typeof HotlineOrderResult>;
