/** Dispatch's coded errors (same GridError catalogue style as core/errors.ts). */
import { define, Errors } from '../core/errors.js';

export const DispatchErrors = {
  workerNotFound: define('WORKER_NOT_FOUND', 404, 'Worker not found'),
  workerExists: define('WORKER_EXISTS', 409, 'A worker with this id already exists'),
  deviceBound: define('DEVICE_ALREADY_BOUND', 409, 'The handheld is already bound to another worker'),
  notHandheld: define('DEVICE_NOT_HANDHELD', 400, 'A worker must be bound to a handheld device'),
  /** The core catalogue's entries, not second definitions of the same codes. */
  deviceNotFound: Errors.deviceNotFound,
  workerUnavailable: define('WORKER_UNAVAILABLE', 409, 'The worker cannot take a dispatch now'),
  caseNotFound: define('CASE_NOT_FOUND', 404, 'Case not found'),
  casesUnavailable: (message?: string, details?: unknown) => Errors.unavailable(message ?? 'The case module is not loaded', details),
} as const;
