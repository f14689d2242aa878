import type { Migration } from '../store/index.js';

/**
 * handheld_sessions: what the worker app holds instead of the device secret.
 * Only a SHA-256 of the token's random part is stored (the token carries 256
 * random bits, so a slow hash buys nothing). A session is bound to one user,
 * the worker that user acts as, and that worker's handheld; revoking it (the
 * worker signs out, an officer revokes it, a new login on the same handheld,
 * the device disabled, deleted or its secret rotated) cuts REST and Socket.IO.
 */
export const mobileMigrations: Migration[] = [
  {
    id: '601_handheld_sessions',
    up: (db) => db.exec(`
create table handheld_sessions (
  id text primary key,
  token_hash text not null,
  user_id text not null,
  worker_id text not null,
  device_id text not null,
  user_agent text,
  created_at timestamptz not null default now(),
  expires_at timestamptz not null,
  last_seen_at timestamptz,
  revoked_at timestamptz,
  revoked_by text,
  revoke_reason text
);
create index handheld_sessions_worker_idx on handheld_sessions (worker_id, created_at);
create index handheld_sessions_active_idx on handheld_sessions (device_id) where revoked_at is null;
`),
  },
];
