/**
 * One catalogue of coded errors (fastify lib/errors.js style). Clients and
 * tests match on `code`; 5xx bodies never carry internals.
 */
export class GridError extends Error {
  readonly code: string;
  readonly statusCode: number;
  readonly details?: unknown;

  constructor(code: string, message: string, statusCode = 400, details?: unknown) {
    super(message);
    this.name = 'GridError';
    this.code = code;
    this.statusCode = statusCode;
    this.details = details;
  }
}

export type Factory = (message?: string, details?: unknown) => GridError;

/** A factory for one coded error: every code of the hub is one entry of `Errors` below. */
export function define(code: string, statusCode: number, defaultMessage: string): Factory {
  return (message, details) => new GridError(code, message ?? defaultMessage, statusCode, details);
}

export const Errors = {
  badRequest: define('BAD_REQUEST', 400, 'Bad request'),
  validation: define('VALIDATION_FAILED', 400, 'Request does not match the schema'),
  payloadInvalid: define('PAYLOAD_INVALID', 400, 'Payload is invalid'),
  unauthorized: define('UNAUTHORIZED', 401, 'Authentication required'),
  badCredentials: define('BAD_CREDENTIALS', 401, 'Wrong username or password'),
  tokenInvalid: define('TOKEN_INVALID', 401, 'Token is invalid or expired'),
  forbidden: define('FORBIDDEN', 403, 'Not allowed for this role'),
  notFound: define('NOT_FOUND', 404, 'Not found'),
  gridNotFound: define('GRID_NOT_FOUND', 404, 'Grid not found'),
  deviceNotFound: define('DEVICE_NOT_FOUND', 404, 'Device not found'),
  deviceExists: define('DEVICE_EXISTS', 409, 'A device with this id already exists'),
  deviceDisabled: define('DEVICE_DISABLED', 403, 'Device is disabled'),
  userExists: define('USER_EXISTS', 409, 'A user with this name already exists'),
  conflict: define('CONFLICT', 409, 'Conflict'),
  payloadTooLarge: define('PAYLOAD_TOO_LARGE', 413, 'Payload too large'),
  rateLimited: define('RATE_LIMITED', 429, 'Too many requests'),
  unavailable: define('SERVICE_UNAVAILABLE', 503, 'Service temporarily unavailable'),
  internal: define('INTERNAL', 500, 'Internal error'),

  // Requests (http/)
  nulByte: define('NUL_BYTE', 400, 'NUL bytes are not allowed in text'),
  nestingTooDeep: define('NESTING_TOO_DEEP', 400, 'JSON nested too deep'),
  timeOutOfRange: define('TIME_OUT_OF_RANGE', 400, 'time out of range (years 0 to 9999)'),
  dataFieldReserved: define('DATA_FIELD_RESERVED', 400, 'data may not set this field'),
  // Users, sessions and the write rule (auth/)
  passwordWeak: define('PASSWORD_WEAK', 400, 'password too weak'),
  tokenRevoked: define('TOKEN_REVOKED', 401, 'This session has ended; log in again'),
  loginThrottled: define('LOGIN_THROTTLED', 429, 'Too many failed logins; try again later'),
  loginBusy: define('LOGIN_BUSY', 503, 'Too many logins at once; try again shortly'),
  userNotFound: define('USER_NOT_FOUND', 404, 'User not found'),
  lastAdmin: define('LAST_ADMIN', 409, 'The last enabled admin without a region cannot be removed, disabled or demoted'),
  selfChange: define('SELF_CHANGE', 409, 'Use another admin account to disable, delete or demote yourself'),
  outsideRegion: define('OUTSIDE_REGION', 403, 'the target is outside your region'),
  cityScopeRequired: define('CITY_SCOPE_REQUIRED', 403, 'only a user without a region may change city-wide objects'),
  // Devices over HTTP
  secretInUrl: define('SECRET_IN_URL', 401, 'a device secret never goes in a URL'),
  // Grids, cases, categories, evidence, departments, citizen intake (cases/)
  gridsInvalid: define('GRIDS_INVALID', 400, 'Grids are invalid'),
  caseNotFound: define('CASE_NOT_FOUND', 404, 'Case not found'),
  caseTransitionInvalid: define('CASE_TRANSITION_INVALID', 409, 'This action is not allowed in the case status'),
  caseNotAssigned: define('CASE_NOT_ASSIGNED', 403, 'the case is not assigned to you'),
  caseAlreadyRated: define('CASE_ALREADY_RATED', 409, 'this closure is already rated'),
  /** An unknown category in a request body (400); categoryNotFound is the 404 of a category URL. */
  categoryRefused: define('CATEGORY_NOT_FOUND', 400, 'unknown category'),
  categoryNotFound: define('CATEGORY_NOT_FOUND', 404, 'unknown category'),
  categoryUnknown: define('CATEGORY_UNKNOWN', 400, 'unknown category'),
  categoryExists: define('CATEGORY_EXISTS', 409, 'category exists'),
  evidenceInvalid: define('EVIDENCE_INVALID', 400, 'evidence must be a JPEG or PNG image'),
  evidenceNotFound: define('EVIDENCE_NOT_FOUND', 404, 'Evidence not found'),
  departmentNotFound: define('DEPARTMENT_NOT_FOUND', 404, 'department not found'),
  departmentExists: define('DEPARTMENT_EXISTS', 409, 'department exists'),
  departmentDisabled: define('DEPARTMENT_DISABLED', 409, 'department is disabled'),
  requestNotFound: define('REQUEST_NOT_FOUND', 404, 'service request not found'),
  // Rules and alarms (rules/)
  ruleNotFound: define('RULE_NOT_FOUND', 404, 'Rule not found'),
  ruleExists: define('RULE_EXISTS', 409, 'rule exists'),
  ruleInvalid: define('RULE_INVALID', 400, 'rule is invalid'),
  windowTooLarge: define('WINDOW_TOO_LARGE', 400, 'backtest window too large'),
  alarmNotFound: define('ALARM_NOT_FOUND', 404, 'Alarm not found'),
  alarmNotActive: define('ALARM_NOT_ACTIVE', 409, 'the alarm is already cleared'),
  // Workers and dispatch (dispatch/)
  workerNotFound: define('WORKER_NOT_FOUND', 404, 'Worker not found'),
  workerExists: define('WORKER_EXISTS', 409, 'A worker with this id already exists'),
  deviceAlreadyBound: define('DEVICE_ALREADY_BOUND', 409, 'The handheld is already bound to another worker'),
  deviceNotHandheld: define('DEVICE_NOT_HANDHELD', 400, 'A worker must be bound to a handheld device'),
  workerUnavailable: define('WORKER_UNAVAILABLE', 409, 'The worker cannot take a dispatch now'),
  // The worker app (mobile/)
  notAWorker: define('NOT_A_WORKER', 403, 'Only a grid worker may sign in to the handheld app'),
  workerNotBound: define('WORKER_NOT_BOUND', 403, 'This user is not bound to a grid worker and handheld'),
  sessionNotFound: define('SESSION_NOT_FOUND', 404, 'Session not found'),
  taskNotFound: define('TASK_NOT_FOUND', 404, 'Task not found'),
  reasonRequired: define('REASON_REQUIRED', 400, 'Declining a task needs a reason'),
  // Video (video/)
  clipGone: define('CLIP_GONE', 410, 'The hub node that held this clip\'s video is gone; the clip cannot be served'),
} as const;

export function isGridError(err: unknown): err is GridError {
  return err instanceof GridError;
}
