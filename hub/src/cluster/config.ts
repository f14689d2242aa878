/**
 * Cluster settings. GRIDLINK_REDIS_URL switches cluster mode on; without it
 * the hub is one process with the embedded emitter, persistence and
 * Socket.IO adapter, exactly as before.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { ConfigError, readFields, type Field } from '../core/config.js';

export const clusterConfigSchema = {
  redisUrl: { env: 'GRIDLINK_REDIS_URL', kind: 'string', description: 'redis://[:password@]host:port[/db]: cluster mode (shared MQTT emitter and sessions, Socket.IO adapter, node presence); unset: one process' },
  nodeId: { env: 'GRIDLINK_NODE_ID', kind: 'string', description: 'Name of this node in a cluster (letters, digits, . _ -); default: host name plus a random suffix' },
  videoKey: { env: 'GRIDLINK_VIDEO_KEY', kind: 'string', description: 'Video master key, 64 hex digits (seals camera RTSP URLs, signs stream tokens); set the same on every node, e.g. the content of a single hub\'s video.key; unset in cluster mode: derived from GRIDLINK_JWT_SECRET' },
  nodeUrl: { env: 'GRIDLINK_NODE_URL', kind: 'string', description: 'http://host:port at which the other nodes reach this node (video viewers are proxied to the node that pulls the camera); default: the listen address' },
  leaseTtlMs: { env: 'GRIDLINK_LEASE_TTL_MS', kind: 'int', default: 10_000, min: 1_000, max: 600_000, description: 'Lease time of a cluster singleton (retention, rule timers, overdue checks); a dead holder is replaced after at most this long' },
} as const satisfies Record<string, Field>;

export interface ClusterConfig {
  readonly redisUrl: string | undefined;
  readonly nodeId: string;
  readonly leaseTtlMs: number;
}

const NODE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function defaultNodeId(): string {
  const host = hostname().replace(/[^A-Za-z0-9._-]/g, '').slice(0, 40) || 'hub';
  return `${host}-${randomBytes(3).toString('hex')}`;
}

/**
 * Settings every node of a cluster must agree on, checked before anything
 * starts: tokens are signed on one node and checked on another, so the
 * signing secret cannot be a per-node file; leases and data need the shared
 * PostgreSQL.
 */
export function checkClusterSettings(env: Record<string, string | undefined> = process.env): ClusterConfig {
  const cfg = loadClusterConfig(env);
  if (!cfg.redisUrl) return cfg;
  const problems: string[] = [];
  if (!env.GRIDLINK_JWT_SECRET) problems.push('GRIDLINK_JWT_SECRET: required with GRIDLINK_REDIS_URL (every node checks tokens the others signed)');
  if (!/^postgres(ql)?:\/\//.test(env.DATABASE_URL ?? '')) problems.push('DATABASE_URL: cluster mode (GRIDLINK_REDIS_URL) needs a shared PostgreSQL, postgres://...');
  if (problems.length) throw new ConfigError(problems);
  return cfg;
}

export function loadClusterConfig(env: Record<string, string | undefined> = process.env, overrides: Partial<ClusterConfig> = {}): ClusterConfig {
  const problems: string[] = [];
  const out = readFields(clusterConfigSchema, env, overrides, problems) as { redisUrl?: string; nodeId?: string; videoKey?: string; nodeUrl?: string; leaseTtlMs: number };
  if (out.nodeUrl !== undefined && !/^https?:\/\/[^\s/]+\/?$/.test(out.nodeUrl)) problems.push('GRIDLINK_NODE_URL: must be http(s)://host:port');
  if (out.videoKey !== undefined && !/^[0-9a-fA-F]{64}$/.test(out.videoKey)) problems.push('GRIDLINK_VIDEO_KEY: must be 64 hex digits');
  if (out.redisUrl !== undefined && !/^rediss?:\/\/[^\s]+$/.test(out.redisUrl)) problems.push(`GRIDLINK_REDIS_URL: must be redis://... or rediss://..., got ${out.redisUrl.split(':')[0]}:`);
  if (out.nodeId !== undefined && !NODE_ID.test(out.nodeId)) problems.push('GRIDLINK_NODE_ID: must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$');
  if (problems.length) throw new ConfigError(problems);
  return Object.freeze({ redisUrl: out.redisUrl, nodeId: out.nodeId ?? defaultNodeId(), leaseTtlMs: out.leaseTtlMs });
}
