/**
 * The HTTP server: fastify with TypeBox schemas on every route (which also
 * feed the OpenAPI document at /docs), coded errors, MQTT over WebSocket at
 * /mqtt, and the built console at /.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Fastify, { type FastifyInstance, type FastifyBaseLogger, type RawServerDefault, type FastifyError } from 'fastify';
import type { IncomingMessage, ServerResponse } from 'node:http';
import fastifyStatic from '@fastify/static';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import fastifyWebsocket from '@fastify/websocket';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { createWebSocketStream } from 'ws';
import type { Config } from '../core/config.js';
import { isGridError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { ErrorBody } from './schemas.js';

export type App = FastifyInstance<RawServerDefault, IncomingMessage, ServerResponse, FastifyBaseLogger, TypeBoxTypeProvider>;

const here = path.dirname(fileURLToPath(import.meta.url));
export const defaultConsoleDir = path.resolve(here, '../../../console/dist');

export async function createApp(deps: {
  config: Config;
  logger: Logger;
  onMqttStream?: (stream: import('node:stream').Duplex, req: IncomingMessage) => void;
}): Promise<App> {
  const { config, logger } = deps;
  const app = Fastify({
    // Request lines would drown the log at device rates; errors are logged by the handler.
    loggerInstance: logger.child({ module: 'http' }, { level: logger.level === 'silent' ? 'silent' : 'warn' }) as FastifyBaseLogger,
    bodyLimit: config.maxPayload + 64 * 1024,
    trustProxy: true,
    ajv: { customOptions: { coerceTypes: 'array', removeAdditional: false, useDefaults: true } },
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.addSchema(ErrorBody);

  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (isGridError(err)) {
      return reply.status(err.statusCode).send({ code: err.code, message: err.message, ...(err.details ? { details: err.details } : {}) });
    }
    if (err.validation) {
      return reply.status(400).send({ code: 'VALIDATION_FAILED', message: err.message });
    }
    const status = err.statusCode ?? 500;
    if (status < 500) {
      const code = status === 413 ? 'PAYLOAD_TOO_LARGE' : status === 415 ? 'UNSUPPORTED_MEDIA_TYPE' : status === 404 ? 'NOT_FOUND' : 'BAD_REQUEST';
      return reply.status(status).send({ code, message: err.message });
    }
    // 5xx: log everything, show nothing internal.
    req.log.error({ err, url: req.url }, 'request failed');
    return reply.status(status).send({ code: status === 503 ? 'SERVICE_UNAVAILABLE' : 'INTERNAL', message: status === 503 ? 'Service temporarily unavailable' : 'Internal error' });
  });

  await app.register(fastifySwagger, {
    openapi: {
      info: { title: 'GridLink 网格联动中枢 API', version: '1', description: 'REST surface of GridLink (CONTRACT section 5). Times are epoch milliseconds.' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' }, device: { type: 'http', scheme: 'basic' } } },
      security: [{ bearer: [] }],
    },
    refResolver: { buildLocalReference: (json, _base, _frag, i) => String(json.$id ?? `def-${i}`) },
  });
  await app.register(fastifySwaggerUi, { routePrefix: '/docs' });
  await app.register(fastifyWebsocket, { options: { maxPayload: config.maxPayload + 64 * 1024 } });

  if (deps.onMqttStream) {
    const onStream = deps.onMqttStream;
    app.get('/mqtt', { websocket: true, schema: { hide: true } }, (socket, req) => {
      const stream = createWebSocketStream(socket);
      stream.on('error', () => socket.terminate());
      onStream(stream, req.raw);
    });
  }

  const consoleDir = config.consoleDir ?? defaultConsoleDir;
  if (existsSync(path.join(consoleDir, 'index.html'))) {
    await app.register(fastifyStatic, { root: consoleDir, prefix: '/', wildcard: false, index: ['index.html'] });
    // Client-side routes fall back to the SPA shell.
    app.setNotFoundHandler((req, reply) => {
      if (req.method === 'GET' && !req.url.startsWith('/api/') && !req.url.startsWith('/video/') && (req.headers.accept ?? '').includes('text/html')) {
        return reply.sendFile('index.html');
      }
      return reply.status(404).send({ code: 'NOT_FOUND', message: `no route ${req.method} ${req.url.split('?')[0]}` });
    });
  } else {
    app.setNotFoundHandler((req, reply) => reply.status(404).send({ code: 'NOT_FOUND', message: `no route ${req.method} ${req.url.split('?')[0]}` }));
    app.get('/', { schema: { hide: true } }, async (_req, reply) =>
      reply.type('text/html').send('<!doctype html><meta charset="utf-8"><title>GridLink</title><p>GridLink hub is running. The console is not built: run <code>npm run build -w console</code>. API: <a href="/docs">/docs</a></p>'),
    );
  }
  return app;
}
