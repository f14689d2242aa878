/**
 * Server → client Socket.IO events (CONTRACT section 6): the contract's
 * definitions (`@gridlink/devices/contract`), under the names the hub has
 * always imported them by.
 */
export type {
  AlarmEvent,
  AlarmStatus,
  AllServerToClientEvents,
  AnyServerEventName,
  AnyServerEventPayload,
  CameraStateEvent,
  CaseEvent,
  ClientToServerEvents,
  DeviceEvent,
  HandheldServerToClientEvents,
  LinkageEvent,
  PositionEvent,
  ServerEventName,
  ServerEventPayload,
  ServerToClientEvents,
  TaskEvent,
} from '@gridlink/devices/contract';
