/**
 * A source-hashing worker thread (started by hashing.ts's BlobHasher from the file beside it:
 * build/src/key/ in tests, dist/<entry>/ in the bundle). Each HashRequest is answered, in
 * order, with the HashReply `hashBatch` gives.
 */
import { parentPort, workerData } from 'node:worker_threads';
import {
  CHUNK_BYTES,
  LARGE_FILE_BYTES,
  hashBatch,
  type HashReply,
  type HashRequest,
  type HashWorkerData,
  type ReadBuffer,
} from './hash-batch.js';

const port = parentPort;
if (port === null) throw new Error('hash-worker.js runs only as a worker thread (hashing.ts)');
const { root, format } = workerData as HashWorkerData;
const pool: ReadBuffer = { buf: Buffer.allocUnsafe(CHUNK_BYTES) };
port.on('message', ({ rels, convs }: HashRequest) => {
  const reply: HashReply = hashBatch(root, rels, convs, format, LARGE_FILE_BYTES, pool);
  port.postMessage(reply);
});
