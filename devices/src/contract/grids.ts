/** The grid hierarchy as GeoJSON (CONTRACT 5 `/grids`): what `PUT /grids` takes and `GET /grids` answers. */
import { Type, type Static } from '@sinclair/typebox';
import { Nullable } from './common.js';

/** A grid as `GET /grids` answers it: normalised (parent and code filled in); other properties of the uploaded file pass through. */
export const GridProperties = Type.Object({
  id: Type.String(),
  name: Type.String(),
  level: Type.String({ description: 'city, district, street, community, grid (other names sort by depth)' }),
  parentId: Nullable(Type.String()),
  code: Nullable(Type.String({ description: 'district 6 digits, then 3 per level' })),
}, { additionalProperties: true });
export type GridProperties = Static<typeof GridProperties>;

/** [lon, lat], WGS-84. */
const Position = Type.Array(Type.Number());

export const GridGeometry = Type.Union([
  Type.Object({ type: Type.Literal('Polygon'), coordinates: Type.Array(Type.Array(Position)) }),
  Type.Object({ type: Type.Literal('MultiPolygon'), coordinates: Type.Array(Type.Array(Type.Array(Position))) }),
]);
export type GridGeometry = Static<typeof GridGeometry>;

export const GridFeature = Type.Object({
  type: Type.Literal('Feature'),
  id: Type.Optional(Type.Union([Type.String(), Type.Number()])),
  properties: GridProperties,
  geometry: GridGeometry,
});
export type GridFeature = Static<typeof GridFeature>;

/** `GET /grids` (only the caller's region when scoped). */
export const GridCollection = Type.Object({ type: Type.Literal('FeatureCollection'), features: Type.Array(GridFeature) });
export type GridCollection = Static<typeof GridCollection>;

/** A feature of `PUT /grids` as GIS tools write it: checked for shape here, for content by the hub (ids, levels, rings). */
export const GridUploadFeature = Type.Object({
  type: Type.Literal('Feature'),
  id: Type.Optional(Type.Union([Type.String(), Type.Number()])),
  properties: Type.Record(Type.String(), Type.Unknown()),
  geometry: Type.Object({ type: Type.Union([Type.Literal('Polygon'), Type.Literal('MultiPolygon')]), coordinates: Type.Array(Type.Unknown()), bbox: Type.Optional(Type.Array(Type.Number())) }),
  bbox: Type.Optional(Type.Array(Type.Number())),
});
export type GridUploadFeature = Static<typeof GridUploadFeature>;

/** `PUT /grids`: replaces the hierarchy. GeoJSON members GIS tools write (name, crs, bbox) are accepted and ignored. */
export const GridUpload = Type.Object({
  type: Type.Literal('FeatureCollection'), features: Type.Array(GridUploadFeature, { maxItems: 200_000 }),
  name: Type.Optional(Type.String()), crs: Type.Optional(Type.Unknown()), bbox: Type.Optional(Type.Array(Type.Number())),
});
export type GridUpload = Static<typeof GridUpload>;

/** `GET /grids/locate`: the finest grid containing a point, with its ancestors (coarse last). */
export const GridLocation = Type.Object({ gridId: Nullable(Type.String()), ancestors: Type.Array(Type.String()) });
export type GridLocation = Static<typeof GridLocation>;

/** `PUT /grids` 200: how many grids the hierarchy now holds. */
export const GridsReplaced = Type.Object({ count: Type.Number() });
export type GridsReplaced = Static<typeof GridsReplaced>;

/** `GET /grids` filters. */
export const GridsQuery = Type.Object({ level: Type.Optional(Type.String()), parentId: Type.Optional(Type.String()) });
export type GridsQuery = Static<typeof GridsQuery>;

/**
 * `GET /grids` as the OpenAPI document and the serializer state it: features
 * pass through untouched (a file's own properties stay); each is a GridFeature,
 * which is what the static type says.
 */
export const GridCollectionResponse = Type.Unsafe<GridCollection>(Type.Object({ type: Type.Literal('FeatureCollection'), features: Type.Array(Type.Unknown()) }));

/** `GET /grids/locate`. */
export const GridLocateQuery = Type.Object({ lat: Type.Number({ minimum: -90, maximum: 90 }), lon: Type.Number({ minimum: -180, maximum: 180 }) });
export type GridLocateQuery = Static<typeof GridLocateQuery>;
