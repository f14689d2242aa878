/**
 * A TCP proxy between the hub and PostgreSQL that a test can cut: `down()`
 * destroys every connection and refuses new ones, like a database host that
 * went away; `up()` lets traffic through again.
 */
import net, { type AddressInfo } from 'node:net';

export interface CuttableProxy {
  url: string;
  down(): void;
  up(): void;
  close(): Promise<void>;
}

export async function cuttableProxy(targetUrl: string): Promise<CuttableProxy> {
  const target = new URL(targetUrl);
  const port = Number(target.port || 5432);
  let isUp = true;
  const pairs = new Set<[net.Socket, net.Socket]>();
  const server = net.createServer((client) => {
    if (!isUp) return client.destroy();
    const upstream = net.connect(port, target.hostname);
    const pair: [net.Socket, net.Socket] = [client, upstream];
    pairs.add(pair);
    const end = () => {
      client.destroy();
      upstream.destroy();
      pairs.delete(pair);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const u = new URL(targetUrl);
  u.hostname = '127.0.0.1';
  u.port = String((server.address() as AddressInfo).port);
  return {
    url: u.toString(),
    down() {
      isUp = false;
      for (const [a, b] of pairs) {
        a.destroy();
        b.destroy();
      }
      pairs.clear();
    },
    up() {
      isUp = true;
    },
    close: () =>
      new Promise<void>((r) => {
        for (const [a, b] of pairs) {
          a.destroy();
          b.destroy();
        }
        server.close(() => r());
      }),
  };
}
