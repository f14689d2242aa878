/**
 * Secret hashing with scrypt (node:crypto, no native addon) and a
 * constant-time compare. Device secrets are 256-bit random tokens, so a
 * lighter cost is enough for them; user passwords get the interactive cost.
 */
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const KEYLEN = 32;
export const DEVICE_COST = { N: 1 << 10, r: 8, p: 1 } as const;
export const PASSWORD_COST = { N: 1 << 15, r: 8, p: 1 } as const;

function scryptAsync(secret: string, salt: Buffer, opts: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(secret, salt, KEYLEN, { ...opts, maxmem: 128 * opts.N! * opts.r! * 2 }, (err, key) => (err ? reject(err) : resolve(key))),
  );
}

/** Format: scrypt$N$r$p$saltB64$hashB64 */
export async function hashSecret(secret: string, cost: { N: number; r: number; p: number } = PASSWORD_COST): Promise<string> {
  const salt = randomBytes(16);
  const key = await scryptAsync(secret, salt, cost);
  return `scrypt$${cost.N}$${cost.r}$${cost.p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

export async function verifySecret(secret: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [, n, r, p, saltB64, hashB64] = parts as [string, string, string, string, string, string];
  const expected = Buffer.from(hashB64, 'base64');
  const key = await scryptAsync(secret, Buffer.from(saltB64, 'base64'), { N: Number(n), r: Number(r), p: Number(p) });
  return key.length === expected.length && timingSafeEqual(key, expected);
}

/** A device secret: 32 random bytes, URL-safe, easy to paste into a device config. */
export function newSecret(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * A 256-bit key kept as hex in `dataDir/name` (mode 0600), created on first
 * use, so tokens and sealed secrets survive a restart. `persistent: false`
 * (in-memory database) gives a fresh key each start.
 */
export function loadKeyFile(dataDir: string, name: string, persistent = true): Buffer {
  if (!persistent) return randomBytes(32);
  const file = path.join(dataDir, name);
  if (existsSync(file)) return Buffer.from(readFileSync(file, 'utf8').trim(), 'hex');
  mkdirSync(dataDir, { recursive: true });
  const key = randomBytes(32);
  writeFileSync(file, key.toString('hex'), { mode: 0o600 });
  return key;
}
