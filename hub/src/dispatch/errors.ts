/** Dispatch's coded errors (same GridError catalogue style as core/errors.ts). */
import { Errors } from '../core/errors.js';

export const DispatchErrors = {
  workerNotFound: Errors.workerNotFound,
  workerExists: Errors.workerExists,
  deviceBound: Errors.deviceAlreadyBound,
  notHandheld: Errors.deviceNotHandheld,
  /** The core catalogue's entries, not second definitions of the same codes. */
  deviceNotFound: Errors.deviceNotFound,
  workerUnavailable: Errors.workerUnavailable,
  caseNotFound: Errors.caseNotFound,
  casesUnavailable: (message?: string, details?: unknown) => Errors.unavailable(message ?? 'The case module is not loaded', details),
} as const;
