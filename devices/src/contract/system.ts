/** The hub's health, and what a device's HTTP uploads answer (CONTRACT 5 `/healthz`, `/ingest`, `/osmand`). */
import { Type, type Static } from '@sinclair/typebox';
import { CHANNELS } from '../topics.js';
import { Nullable } from './common.js';

/** Who holds a singleton lease (a timer that runs once per cluster), and its fencing token. */
export const LeaseRole = Type.Object({ holder: Nullable(Type.String()), mine: Type.Boolean(), token: Type.Number() });
export type LeaseRole = Static<typeof LeaseRole>;

/** This node in a cluster: its id, the live nodes, and who holds each singleton lease (docs/cluster.md). */
export const ClusterHealth = Type.Object({
  mode: Type.String(),
  nodeId: Type.String(),
  redis: Type.Optional(Type.Boolean()),
  peers: Type.Array(Type.Object({ id: Type.String(), http: Type.Number(), mqtt: Type.Number(), startedAt: Type.Number() })),
  owners: Type.Array(Type.String(), { description: 'the nodes this node spreads device and rule owners over: the peers less those it found gone' }),
  leases: Type.Record(Type.String(), LeaseRole),
  cameras: Type.Optional(Type.Number({ description: 'cameras this node pulls as their owner' })),
});
export type ClusterHealth = Static<typeof ClusterHealth>;

/** `GET /healthz` (no token): `degraded` when the database fails or a cluster node has lost Redis. */
export const Health = Type.Object({
  status: Type.String(),
  db: Type.Object({ engine: Type.String(), timescale: Type.Boolean(), ok: Type.Boolean() }),
  pending: Type.Number(),
  version: Type.String(),
  cluster: Type.Optional(ClusterHealth),
});
export type Health = Static<typeof Health>;

/** `POST /ingest/{deviceId}/{channel}` (HTTP Basic deviceId:secret): the same bodies as MQTT; `owntracks` takes OwnTracks JSON. */
export const IngestParams = Type.Object({ deviceId: Type.String(), channel: Type.Union([...CHANNELS.map((c) => Type.Literal(c)), Type.Literal('owntracks')]) });
export type IngestParams = Static<typeof IngestParams>;

/** An accepted upload (`/ingest` 202, `/osmand` 200, `/m/positions` 202): how many rows were committed before the answer. */
export const Stored = Type.Object({ stored: Type.Number() });
export type Stored = Static<typeof Stored>;

/**
 * `GET|POST /osmand` (server root): Traccar Client / OsmAnd's query string, as text
 * (`speed` in knots, `timestamp` epoch s, ms or a date). Other members are kept;
 * a secret in the URL (`secret=`, `password=`) is refused. Traccar Client 9+ may
 * send its JSON body instead.
 */
export const OsmandQuery = Type.Object({
  id: Type.Optional(Type.String({ description: 'the device\'s OsmAnd token (or its id with HTTP Basic)' })),
  lat: Type.Optional(Type.String()),
  lon: Type.Optional(Type.String()),
  timestamp: Type.Optional(Type.String()),
  speed: Type.Optional(Type.String({ description: 'knots' })),
  bearing: Type.Optional(Type.String()),
  altitude: Type.Optional(Type.String()),
  accuracy: Type.Optional(Type.String()),
  batt: Type.Optional(Type.String()),
}, { additionalProperties: true });
export type OsmandQuery = Static<typeof OsmandQuery>;
