/**
 * Wire types of the REST and Socket.IO surface (CONTRACT sections 5-6) as
 * the console reads them: every shape is the contract's, imported from
 * `@gridlink/devices/contract` as a type (erased from the bundle); run-time
 * lists come from `@gridlink/devices/workflow` (plain data, no TypeBox).
 * Where the console reads a narrower view, it is a Pick of the contract's
 * type, never a copy.
 */
import type {
  AlarmAckBody, BacktestWindow, CreateUserBody, CreateWorkerBody, DutyBody, PasswordBody, RegisterDeviceBody, UpdateUserBody, WorkingCalendar,
  Actor, Assessment, AssessmentLevel, AssessmentRow, CasesPerDay, Category, Department, DeviceSecret, GridLocation, GridsReplaced, LoginResponse, Page, RegisteredDevice, AlarmEvent, Camera, Candidate, CaseAction, CaseCounts, CaseDetail, CaseHistoryEntry, CaseSource, CaseStatus,
  CaseSummary, Clip, Device, DispatchRecord, Evidence, GridCollection, GridFeature, Kpi, LinkageEvent, LinkedCamera, PositionEvent, RegisteredCamera,
  Role, RuleBacktest, RuleRecord, Severity, StreamUrls, Telemetry, TelemetryPoint, TrackPoint, User, Worker, WorkerStatus, WorkerTrack,
} from '@gridlink/devices/contract';
export type {
  AlarmAckBody, BacktestWindow, CreateUserBody, CreateWorkerBody, DutyBody, PasswordBody, RegisterDeviceBody, UpdateUserBody, WorkingCalendar,
  Actor, Assessment, AssessmentLevel, AssessmentRow, CasesPerDay, Category, Department, DeviceSecret, GridLocation, GridsReplaced, LoginResponse, Page, RegisteredDevice, Camera, Candidate, CaseAction, CaseCounts, CaseDetail, CaseHistoryEntry, CaseSource, CaseStatus, CaseSummary, Clip, Device, DispatchRecord,
  Evidence, GridCollection, GridFeature, Kpi, LinkedCamera, RegisteredCamera, Role, RuleBacktest, Severity, Telemetry, TelemetryPoint, TrackPoint,
  User, Worker, WorkerStatus, WorkerTrack,
};
export { CASE_STATUSES, OPEN_STATUSES, WORKER_STATUSES } from '@gridlink/devices/workflow';

/**
 * What moves a worker's marker: a Socket.IO `positions` item, or a REST
 * worker's last fix on re-sync (which carries no device id and may carry no status).
 */
export type PositionUpdate = Pick<PositionEvent, 'workerId' | 'lat' | 'lon' | 'ts'> & Partial<Pick<PositionEvent, 'status'>>;

/** An alarm as the socket pushes it; REST answers (the contract's Alarm) carry more, which the console does not read. */
export type Alarm = AlarmEvent;

export type Linkage = LinkageEvent;

/** The signed URLs of `GET /cameras/{id}/stream` a player needs. */
export type StreamInfo = Pick<StreamUrls, 'hls' | 'live' | 'health'>;

/** A rule as `GET /rules` answers it. */
export type Rule = RuleRecord;
