/**
 * The contract's enumerations as plain data (no TypeBox, no Node): safe to
 * import at run time from a browser bundle. Schemas and static types built
 * on them live in `@gridlink/devices/contract`.
 */

/** Event and alarm severities (CONTRACT 3 `event`, CONTRACT 6 `alarm`). */
export const SEVERITIES = ['critical', 'major', 'minor', 'warning', 'info'] as const;
export type Severity = (typeof SEVERITIES)[number];

/** User roles (CONTRACT 5). */
export const ROLES = ['admin', 'officer', 'dispatcher', 'worker', 'integrator'] as const;
export type Role = (typeof ROLES)[number];

const OPEN = ['reported', 'registered', 'dispatched', 'accepted', 'on_scene', 'resolved'] as const;
/** Every case status (CONTRACT 4), open ones first. */
export const CASE_STATUSES = [...OPEN, 'closed', 'rejected'] as const;
export type CaseStatus = (typeof CASE_STATUSES)[number];
export type OpenStatus = (typeof OPEN)[number];
/** Case statuses still in the loop (CONTRACT 4); typed wide so `OPEN_STATUSES.includes(status)` takes any status. */
export const OPEN_STATUSES: readonly CaseStatus[] = OPEN;

/** Where a case came from (CONTRACT 4). */
export const CASE_SOURCES = ['rule', 'worker', 'officer', 'citizen'] as const;
export type CaseSource = (typeof CASE_SOURCES)[number];

/** A grid worker's live status (CONTRACT 5 `/workers`). */
export const WORKER_STATUSES = ['off_duty', 'available', 'dispatched', 'en_route', 'on_scene'] as const;
export type WorkerStatus = (typeof WORKER_STATUSES)[number];

/** Teams of the grid workforce: 网格长 / 网格员 / 志愿者. */
export const TEAMS = ['grid_leader', 'grid_worker', 'volunteer'] as const;
export type Team = (typeof TEAMS)[number];

/** Alarm lifecycle (CONTRACT 5 `/alarms`, CONTRACT 6 `alarm`). */
export const ALARM_STATUSES = ['active', 'cleared'] as const;
export type AlarmStatus = (typeof ALARM_STATUSES)[number];

/** A device id (CONTRACT 2): the MQTT client id and username, and the topic segment. */
export const DEVICE_ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$';

/** A category code (CONTRACT 4): kind letter (C 部件 / E 事件) + 2-digit 大类 + 2-digit 小类, e.g. E0402. */
export const CATEGORY_CODE_PATTERN = '^[CE]\\d{4}$';

/** How a category's time limit counts: working time (the working calendar) or calendar time. */
export const LIMIT_UNITS = ['working', 'calendar'] as const;
export type LimitUnit = (typeof LIMIT_UNITS)[number];

/** A camera as its RTSP health probes see it (CONTRACT 5 `/cameras`, CONTRACT 6 `camera.state`). */
export const CAMERA_HEALTH = ['unknown', 'online', 'degraded', 'offline'] as const;
export type CameraHealth = (typeof CAMERA_HEALTH)[number];

/** A camera's stream on this hub: idle until someone watches or a buffer keeps it. */
export const STREAM_STATES = ['idle', 'starting', 'live', 'stalled', 'offline'] as const;
export type StreamState = (typeof STREAM_STATES)[number];

/** Levels of the monthly assessment (月度考核, CONTRACT 5 `/stats/assessment`). */
export const ASSESSMENT_LEVELS = ['grid', 'community', 'street', 'worker', 'department'] as const;
export type AssessmentLevel = (typeof ASSESSMENT_LEVELS)[number];

/** The rates the assessment weighs into a score. */
export const ASSESSMENT_METRICS = ['onTimeClose', 'onTimeAck', 'rework', 'satisfaction', 'selfFound'] as const;
export type AssessmentMetric = (typeof ASSESSMENT_METRICS)[number];
