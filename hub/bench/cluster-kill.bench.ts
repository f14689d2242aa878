/**
 * npm run bench:cluster-kill — a node SIGKILLed in the middle of QoS 1 load
 * offered at 5,000 msg/s while cases are raised, dispatched and escalated
 * (docs/cluster.md, Measured). Three hub processes, Redis and PostgreSQL on
 * this machine; the scenario is the one `hub/test/cluster/kill-under-load.test.ts`
 * asserts on (hub/test/cluster/kill-load.ts): 60 water-level sensors, 9 smoke
 * sensors whose alarms become auto-dispatched cases, 18 handhelds (a third
 * of the cases' nearest never answer, so their accept timeout fires and the
 * case is re-dispatched), 6 consoles; the node holding the most leases dies
 * when a third of the readings are acknowledged.
 *
 * Prints JSON: offered and acknowledged msg/s before and after the kill,
 * acknowledged readings lost (must be 0), smoke alarms and cases doubled or
 * lost, accept timeouts and escalations fired, and the seconds until every
 * device and console of the killed node was connected to a surviving node.
 *
 * BENCH_RATE (default 5000), BENCH_TOTAL (36000), BENCH_DEVICES (60).
 * Needs redis-server and PostgreSQL (TEST_DATABASE_URL or BENCH_DATABASE_URL).
 */
import os from 'node:os';
import { DEFAULT_KILL_LOAD, KillLoadCluster, summarize } from '../test/cluster/kill-load.js';

if (process.env.BENCH_DATABASE_URL) process.env.TEST_DATABASE_URL = process.env.BENCH_DATABASE_URL;

const opts = {
  ...DEFAULT_KILL_LOAD,
  rate: Number(process.env.BENCH_RATE ?? DEFAULT_KILL_LOAD.rate),
  total: Number(process.env.BENCH_TOTAL ?? DEFAULT_KILL_LOAD.total),
  loadDevices: Number(process.env.BENCH_DEVICES ?? DEFAULT_KILL_LOAD.loadDevices),
  log: (s: string) => process.stderr.write(`${s}\n`),
};
const loadAtStart = os.loadavg().map((x) => Math.round(x * 100) / 100);
const cluster = new KillLoadCluster(opts);
let ok = false;
try {
  await cluster.start();
  const f = await cluster.run();
  const s = summarize(f);
  const sec = (ms: number | null) => (ms === null ? null : Math.round(ms / 100) / 10);
  const pct = (xs: number[], p: number) => (xs.length ? sec(xs[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))]!) : null);
  const out = {
    date: new Date().toISOString(),
    machine: { cpus: os.cpus().length, loadAverageAtStart: loadAtStart, loadAverageAtEnd: os.loadavg().map((x) => Math.round(x * 100) / 100) },
    nodes: 3,
    offeredMsgPerS: opts.rate,
    readings: f.load.perDevice * f.load.devices.length,
    loadDevices: f.load.devices.length,
    killed: f.killed,
    leasesOfKilled: f.leasesOfKilled,
    msgPerS: { offeredBeforeKill: f.load.offeredBefore, offeredAfterKill: f.load.offeredAfter, ackedBeforeKill: f.load.ackedBefore, ackedAfterKill: f.load.ackedAfter },
    loadSeconds: f.load.seconds,
    lostAckedReadings: s.readings.lostAcked,
    doubledReadings: s.readings.doubled,
    smoke: s.smoke,
    correlationAlarms: f.correlationAlarms,
    timers: s.timers,
    reconnect: {
      devicesMoved: f.reconnect.devices.moved,
      devicesBack: f.reconnect.devices.back,
      devicesAllBackS: sec(f.reconnect.devices.maxMs),
      devicesMedianS: pct(f.reconnect.devices.ms, 50),
      consolesMoved: f.reconnect.consoles.moved,
      consolesBack: f.reconnect.consoles.back,
      consolesAllBackS: sec(f.reconnect.consoles.maxMs),
      consolesHearingAfter: `${f.consolesHearing} of ${f.consoles}`,
    },
  };
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  ok = true;
} finally {
  await cluster.stop(!ok && process.env.GRIDLINK_CLUSTER_LOGS === '1');
}
