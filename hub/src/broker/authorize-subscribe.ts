import type { AedesOptions } from 'aedes';
type AuthorizeSubscribeHandler = NonNullable<AedesOptions['authorizeSubscribe']>;
import { commandTopic } from '@gridlink/devices';

/**
 * A device may subscribe only to its own downlink topic. Anything else is
 * negated: SUBACK carries 0x80 for it and the connection stays up
 * [MQTT-3.9.3-2].
 */
export function createAuthorizeSubscribe(): AuthorizeSubscribeHandler {
  return (client, sub, callback) => {
    if (!client?.id) return callback(null, null);
    callback(null, sub.topic === commandTopic(client.id) ? sub : null);
  };
}
