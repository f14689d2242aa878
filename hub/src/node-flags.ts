/**
 * Node/V8 flags the hub process runs with (package.json's start, start:hub
 * and demo scripts, docker/Dockerfile and `npm run cluster` pass the same).
 *
 * --max-semi-space-size=64: every device message lives from its PUBLISH to
 * its commit (tens of milliseconds), so with V8's default 16 MiB semi-spaces
 * each scavenge copies all messages in flight and GC took a fifth of the
 * hub's busy time under load. 64 MiB semi-spaces (up to ~190 MiB of young
 * generation) scavenge a quarter as often: bench:ingest on PostgreSQL went
 * from 22,300 to 26,100 acked msg/s on 2 cores (docs/benchmarks.md).
 */
export const HUB_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=64'];
