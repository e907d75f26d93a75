/** Built-in clients of the test server at 127.0.0.1:6379, shared by the RESP client test files. */

import { after } from "node:test";

import { RespClient } from "../../../../src/brokers/redis/resp/resp-client.js";

/** Lazy clients of the test server, and the list an `after` hook disconnects. */
export interface TestClients {
  /** Every client to disconnect after the file's tests; add clients made by other means, such as `duplicate()`. */
  readonly clients: RespClient[];
  readonly newClient: (options?: ConstructorParameters<typeof RespClient>[0]) => RespClient;
}

/**
 * Returns a factory of lazy clients of the test server, and registers an
 * `after` hook that deletes the keys under `namespace` and disconnects
 * every client in the list.
 */
export function testClients(namespace: string): TestClients {
  const clients: RespClient[] = [];
  const newClient = (options: ConstructorParameters<typeof RespClient>[0] = {}): RespClient => {
    const client = new RespClient({ host: "127.0.0.1", port: 6379, lazyConnect: true, ...options });
    clients.push(client);
    return client;
  };

  after(async () => {
    const admin = newClient();
    const keys = (await admin.call("KEYS", [`${namespace}:*`])) as string[];
    if (keys.length > 0) {
      await admin.call("DEL", keys);
    }
    for (const client of clients) {
      client.disconnect();
    }
  });

  return { clients, newClient };
}
