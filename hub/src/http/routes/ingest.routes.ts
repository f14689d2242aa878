import { IngestParams, Stored } from '@gridlink/devices/contract';
import { Errors } from '../../core/errors.js';
import type { Ingest } from '../../ingest/index.js';
import type { DeviceRegistry } from '../../registry/index.js';
import type { App } from '../app.js';
import { admitDevice, basicCredentials } from '../guards.js';
import { errors } from '../schemas.js';

/**
 * Device ingest over HTTP for devices without MQTT (CONTRACT 3): same bodies,
 * same validation, and 202 only after the message is committed.
 */
export function ingestRoutes(app: App, deps: { registry: DeviceRegistry; ingest: Ingest }): void {
  const { registry, ingest } = deps;
  // The device's bytes go to ingest as they came (same decoder as MQTT), so this
  // scope alone keeps JSON bodies raw; every other route keeps fastify's parser.
  app.register(async (scope) => {
    scope.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
    ingestRoute(scope as unknown as App, registry, ingest);
  });
}

function ingestRoute(app: App, registry: DeviceRegistry, ingest: Ingest): void {
  app.post('/ingest/:deviceId/:channel', {
    schema: {
      tags: ['ingest'],
      summary: 'Publish one message as a device, authenticated with HTTP Basic deviceId:secret',
      security: [{ device: [] }],
      params: IngestParams,
      response: { 202: Stored, ...errors(400, 401, 403, 413, 429, 503) },
    },
  }, async (req, reply) => {
    const cred = basicCredentials(req.headers.authorization);
    if (!cred || cred.id !== req.params.deviceId) {
      reply.header('www-authenticate', 'Basic realm="gridlink-device"');
      throw Errors.unauthorized('HTTP Basic deviceId:secret required');
    }
    if (!(await registry.authenticate(cred.id, cred.secret))) {
      reply.header('www-authenticate', 'Basic realm="gridlink-device"');
      throw Errors.unauthorized('wrong device credentials or device disabled');
    }
    admitDevice(ingest, cred.id, reply);
    const body = req.body as Buffer | string | undefined;
    const raw = Buffer.isBuffer(body) ? body : Buffer.from(body ?? '');
    const outcome = await ingest.handleAsync(cred.id, req.params.channel, raw);
    if (outcome.ok) return reply.status(202).send({ stored: outcome.stored });
    if (outcome.retryable) {
      reply.header('retry-after', '1');
      throw Errors.unavailable('message not stored, retry later');
    }
    if (outcome.reason === 'too_large') throw Errors.payloadTooLarge(outcome.detail);
    throw Errors.payloadInvalid(outcome.detail, { reason: outcome.reason });
  });
}
