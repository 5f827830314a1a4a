/**
 * A preload for the action's node processes (NODE_OPTIONS=--import=<this file's URL>): when
 * CLYDE_TEST_MAXRSS_DIR is set, each process writes its peak resident set size in bytes
 * (whole process, worker threads included) to `<dir>/<pid>` as it exits.
 */
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';

const dir = process.env['CLYDE_TEST_MAXRSS_DIR'];
if (dir) {
  process.on('exit', () => {
    writeFileSync(
      path.join(dir, String(process.pid)),
      String(process.resourceUsage().maxRSS * 1024),
    );
  });
}
