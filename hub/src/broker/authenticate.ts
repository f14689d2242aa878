import type { AedesOptions } from 'aedes';
type AuthenticateHandler = NonNullable<AedesOptions['authenticate']>;
import type { Metrics } from '../core/metrics.js';
import type { DeviceRegistry } from '../registry/index.js';

/** CONNACK "not authorized": v3.1.1 return code 5. */
function notAuthorized(): Error & { returnCode: number } {
  return Object.assign(new Error('not authorized'), { returnCode: 5 });
}

/**
 * username = device id, password = secret, clientId = device id (CONTRACT 2).
 * There is no anonymous access.
 */
export function createAuthenticate(registry: DeviceRegistry, metrics: Metrics): AuthenticateHandler {
  return (client, username, password, callback) => {
    const fail = (reason: string) => {
      metrics.authFailures.inc({ reason });
      callback(notAuthorized(), false);
    };
    if (!username || !password) return fail('anonymous');
    if (client.id !== username) return fail('client_id');
    registry.authenticate(username, password.toString('utf8')).then(
      (device) => (device ? callback(null, true) : fail('credentials')),
      () => fail('error'),
    );
  };
}
