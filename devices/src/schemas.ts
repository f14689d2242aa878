/**
 * The device channel schemas (CONTRACT section 3, defined in
 * contract/channels.ts), compiled once at module load.
 */
import type { TSchema } from '@sinclair/typebox';
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import type { Channel } from './topics.js';
import { AlertBody, CaseProgressBody, Command, EventBody, LocationItem, ReportBody, StatusBody, TelemetryItem } from './contract/channels.js';

export * from './contract/channels.js';
/** The handheld's `case` channel actions under the names this entry has always used. */
export { HANDHELD_CASE_ACTIONS as CASE_ACTIONS, type HandheldCaseAction as CaseAction } from './contract/channels.js';

// ---- compiled checkers (module load, never per message) -----------------------------------

export const checkers = {
  telemetry: TypeCompiler.Compile(TelemetryItem),
  event: TypeCompiler.Compile(EventBody),
  alert: TypeCompiler.Compile(AlertBody),
  location: TypeCompiler.Compile(LocationItem),
  report: TypeCompiler.Compile(ReportBody),
  case: TypeCompiler.Compile(CaseProgressBody),
  status: TypeCompiler.Compile(StatusBody),
  command: TypeCompiler.Compile(Command),
} satisfies Record<Channel | 'command', TypeCheck<TSchema>>;

/** Parses and validates a downlink command (what a handheld or simulator receives); null if invalid. */
export function decodeCommand(payload: Uint8Array | string): Command | null {
  let value: unknown;
  try {
    value = JSON.parse(typeof payload === 'string' ? payload : new TextDecoder().decode(payload));
  } catch {
    return null;
  }
  return checkers.command.Check(value) ? value : null;
}
