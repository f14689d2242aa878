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

/** A factory for one coded error; domain modules define their own codes with it. */
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
} as const;

export function isGridError(err: unknown): err is GridError {
  return err instanceof GridError;
}
