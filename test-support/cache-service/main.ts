/**
 * Standalone loopback cache service for demos: starts it, prints the environment a JavaScript
 * action needs as one line of JSON on stdout, and serves until SIGTERM or SIGINT.
 *
 *   node build/test-support/cache-service/main.js [--host 127.0.0.1] [--port 0] [--data-dir DIR]
 */
import { parseArgs } from 'node:util';

import { startCacheService } from './index.js';

const { values } = parseArgs({
  options: {
    host: { type: 'string' },
    port: { type: 'string' },
    'data-dir': { type: 'string' },
  },
});

const service = await startCacheService({
  host: values.host,
  port: values.port === undefined ? undefined : Number(values.port),
  dataDir: values['data-dir'],
});
process.stdout.write(`${JSON.stringify(service.env())}\n`);

let stopping = false;
const stop = (): void => {
  if (stopping) return;
  stopping = true;
  service.close().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`cache service: close failed: ${String(err)}\n`);
      process.exit(1);
    },
  );
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
