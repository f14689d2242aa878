import { alink } from './alink.js';
import type { Codec } from './codec.js';
import { iotda } from './iotda.js';
import { owntracks } from './owntracks.js';

export type { Codec } from './codec.js';
export { owntracks } from './owntracks.js';
export { alink, createAlink, ALINK_METRIC_ALIASES, type AlinkOptions } from './alink.js';
export { iotda, createIotda, type IotdaOptions } from './iotda.js';

export const codecs: Record<string, Codec> = Object.freeze({ owntracks, alink, iotda });
