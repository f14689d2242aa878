/**
 * Composition root: read config, build the hub, start it, stop it cleanly on
 * SIGINT/SIGTERM. Invalid configuration exits non-zero before anything
 * listens, naming every bad setting at once.
 */
import { ConfigError } from './core/config.js';
import { createLogger } from './core/logger.js';
import { createHub } from './hub.js';
import { loadAllSettings } from './settings.js';

async function main(): Promise<void> {
  let config;
  try {
    config = loadAllSettings();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const logger = createLogger(config.logLevel);
  const hub = await createHub(config, { logger });
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    const force = setTimeout(() => process.exit(1), 15_000);
    force.unref();
    await hub.stop();
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  try {
    const ports = await hub.start();
    // CONTRACT 1: the bound ports as one JSON line.
    process.stdout.write(`${JSON.stringify({ msg: 'listening', ...ports })}\n`);
  } catch (err) {
    logger.fatal({ err }, 'hub failed to start');
    await hub.stop().catch(() => undefined);
    process.exit(1);
  }
}

void main();
