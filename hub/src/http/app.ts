/**
 * The HTTP server: fastify with TypeBox schemas on every route (which also
 * feed the OpenAPI document at /docs), coded errors, MQTT over WebSocket at
 * /mqtt, and the built console at /.
 *
 * Input hygiene lives here once for every route: request bodies accept only
 * the fields their schema declares (objects are sealed with
 * `additionalProperties: false` when a route is added, unknown fields answer
 * 400 UNKNOWN_FIELD), NUL bytes in the query or path answer 400 NUL_BYTE,
 * JSON deeper than MAX_DEPTH answers 400 NESTING_TOO_DEEP; security headers
 * come from @fastify/helmet. `app.routeTable` lists every route (the
 * security tests walk it).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Fastify, { type FastifyInstance, type FastifyBaseLogger, type RawServerDefault, type FastifyError } from 'fastify';
import type { IncomingMessage, ServerResponse } from 'node:http';
import fastifyHelmet from '@fastify/helmet';
import fastifyStatic from '@fastify/static';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import fastifyWebsocket from '@fastify/websocket';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { createWebSocketStream } from 'ws';
import type { Auth } from '../auth/index.js';
import type { Config } from '../core/config.js';
import { Errors, isGridError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { authenticate } from './guards.js';
import { ErrorBody } from './schemas.js';

/** Deepest JSON nesting a request body may have (GeoJSON MultiPolygons need 5). */
export const MAX_DEPTH = 32;

export interface RouteEntry {
  method: string;
  url: string;
  /** The body schema as compiled (sealed), when the route takes a body. */
  body?: unknown;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Every route added to the server (method, full url), in order. */
    routeTable: RouteEntry[];
  }
}

/**
 * Seals every object schema in a body schema: `additionalProperties: false`
 * unless the schema says otherwise (maps such as `meta` are
 * patternProperties / additionalProperties schemas and stay open).
 */
export function sealSchema(schema: unknown, seen = new Set<unknown>()): void {
  if (!schema || typeof schema !== 'object' || seen.has(schema)) return;
  seen.add(schema);
  const s = schema as Record<string, unknown>;
  if (s.type === 'object' && s.properties && s.additionalProperties === undefined && s.patternProperties === undefined) s.additionalProperties = false;
  for (const k of ['properties', 'patternProperties', 'definitions', '$defs']) {
    const m = s[k];
    if (m && typeof m === 'object') for (const v of Object.values(m)) sealSchema(v, seen);
  }
  for (const k of ['items', 'additionalProperties', 'not', 'if', 'then', 'else']) sealSchema(s[k], seen);
  for (const k of ['anyOf', 'oneOf', 'allOf', 'prefixItems']) if (Array.isArray(s[k])) for (const v of s[k] as unknown[]) sealSchema(v, seen);
}

/** Depth of a parsed JSON value, without recursion (a hostile body must not overflow the stack). */
export function jsonDepth(v: unknown, limit: number): number {
  let max = 0;
  const stack: Array<[unknown, number]> = [[v, 1]];
  while (stack.length) {
    const [x, d] = stack.pop()!;
    if (!x || typeof x !== 'object' || Buffer.isBuffer(x)) continue;
    if (d > max) max = d;
    if (max > limit) return max;
    for (const c of Array.isArray(x) ? x : Object.values(x)) if (c && typeof c === 'object') stack.push([c, d + 1]);
  }
  return max;
}

const hasNul = (v: unknown): boolean =>
  typeof v === 'string' ? v.includes('\0') : Array.isArray(v) ? v.some(hasNul) : !!v && typeof v === 'object' && Object.entries(v).some(([k, x]) => k.includes('\0') || hasNul(x));

function trustProxy(v: string): boolean | string[] {
  if (/^(off|false|0|no)?$/i.test(v.trim())) return false;
  if (/^(true|1|yes|on)$/i.test(v.trim())) return true;
  return v.split(',').map((x) => x.trim()).filter(Boolean);
}

export type App = FastifyInstance<RawServerDefault, IncomingMessage, ServerResponse, FastifyBaseLogger, TypeBoxTypeProvider>;

const here = path.dirname(fileURLToPath(import.meta.url));
export const defaultConsoleDir = path.resolve(here, '../../../console/dist');

export async function createApp(deps: {
  config: Config;
  logger: Logger;
  /** Protects /docs when config.docsAuth is set. */
  auth?: Auth;
  onMqttStream?: (stream: import('node:stream').Duplex, req: IncomingMessage) => void;
}): Promise<App> {
  const { config, logger } = deps;
  const app = Fastify({
    // Request lines would drown the log at device rates; errors are logged by the handler.
    loggerInstance: logger.child({ module: 'http' }, { level: logger.level === 'silent' ? 'silent' : 'warn' }) as FastifyBaseLogger,
    bodyLimit: config.maxPayload + 64 * 1024,
    // Only a configured proxy may name the client address (login throttling keys on it).
    trustProxy: trustProxy(config.trustProxy),
    ajv: { customOptions: { coerceTypes: 'array', removeAdditional: false, useDefaults: true } },
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.addSchema(ErrorBody);

  const routeTable: RouteEntry[] = [];
  app.decorate('routeTable', routeTable);
  app.addHook('onRoute', (route) => {
    const body = (route.schema as { body?: unknown } | undefined)?.body;
    if (body) sealSchema(body);
    for (const m of [route.method].flat()) if (m !== 'HEAD') routeTable.push({ method: m, url: route.url, ...(body ? { body } : {}) });
  });

  app.addHook('preValidation', async (req) => {
    if (hasNul(req.query) || hasNul(req.params)) throw Errors.nulByte('NUL bytes are not allowed in the query or path');
    if (req.body && typeof req.body === 'object' && jsonDepth(req.body, MAX_DEPTH) > MAX_DEPTH) {
      throw Errors.nestingTooDeep(`JSON nested deeper than ${MAX_DEPTH} levels`);
    }
  });

  await app.register(fastifyHelmet, {
    // The console loads its own scripts and styles; map tiles and media may come from configured hosts.
    contentSecurityPolicy: {
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'", "'unsafe-inline'"],
        imgSrc: ["'self'", 'data:', 'blob:', 'https:', 'http:'],
        mediaSrc: ["'self'", 'blob:'],
        connectSrc: ["'self'", 'ws:', 'wss:', 'https:', 'http:'],
        workerSrc: ["'self'", 'blob:'],
        frameAncestors: ["'none'"],
        objectSrc: ["'none'"],
        baseUri: ["'self'"],
        upgradeInsecureRequests: null,
      },
    },
    // The hub is often reached over plain HTTP on a private network; HSTS is for the TLS proxy in front.
    strictTransportSecurity: false,
    crossOriginEmbedderPolicy: false,
    referrerPolicy: { policy: 'no-referrer' },
  });

  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (isGridError(err)) {
      return reply.status(err.statusCode).send({ code: err.code, message: err.message, ...(err.details ? { details: err.details } : {}) });
    }
    if (err.validation) {
      const extra = err.validation.find((v) => v.keyword === 'additionalProperties');
      if (extra) {
        const field = String((extra.params as { additionalProperty?: unknown }).additionalProperty ?? '');
        return reply.status(400).send({ code: 'UNKNOWN_FIELD', message: `unknown field ${field}${extra.instancePath ? ` in ${extra.instancePath}` : ''}`, details: { field, path: extra.instancePath } });
      }
      return reply.status(400).send({ code: 'VALIDATION_FAILED', message: err.message });
    }
    if ((err as { code?: string }).code === 'FST_ERR_CTP_INVALID_JSON_BODY' || err instanceof SyntaxError) {
      return reply.status(400).send({ code: 'BAD_REQUEST', message: 'body is not valid JSON' });
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
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' }, device: { type: 'http', scheme: 'basic' }, handheld: { type: 'http', scheme: 'bearer', description: 'worker app session token (POST /m/session)' } } },
      security: [{ bearer: [] }],
    },
    refResolver: { buildLocalReference: (json, _base, _frag, i) => String(json.$id ?? `def-${i}`) },
  });
  const docsGuard = config.docsAuth && deps.auth ? authenticate(deps.auth) : null;
  await app.register(fastifySwaggerUi, { routePrefix: '/docs', ...(docsGuard ? { uiHooks: { onRequest: docsGuard } } : {}) });
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
    // preCompressed: the console build ships .br/.gz next to each asset (console/m/precompress.ts).
    await app.register(fastifyStatic, { root: consoleDir, prefix: '/', wildcard: false, index: ['index.html'], preCompressed: true });
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
