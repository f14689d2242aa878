/**
 * `@gridlink/simulators`: what another workspace may use of the simulators
 * (the console's screenshot and benchmark scripts populate a hub with the
 * demo district and speak MQTT as a real device does). Simulated cameras
 * with a real RTSP server are `@gridlink/simulators/camera`.
 */
export { DeviceLink, type LinkOptions, type LinkStats } from './devices/link.js';
export { generateDistrict, type DistrictOptions } from './district/generate.js';
export { HubClient, HubError } from './hub-client.js';
