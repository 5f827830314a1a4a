/**
 * `npm run bench`: every benchmark, each in its own process so one's memory and file-system
 * churn does not bleed into the next. Each prints its own table with the baseline beside it.
 *   npm run bench                 all of them
 *   npm run bench -- keys store   some of them
 *   npm run bench -- action --quick   flags (anything starting with -) go to each benchmark
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const BENCHES = {
  keys: 'cache key vs hashFiles() and find | xargs sha256sum (issue 3)',
  store: 'local store vs tar + zstd (issue 4)',
  prune: 'prune policy on 10k entries and 1M blobs (issue 5)',
  action: 'this action end to end (dist/, runner emulation) vs actions/cache (issue 14)',
  bucket:
    'the bucket tier (s3rver, dist/) beside the runner-cache path of the same tree (issue 15)',
} as const;

const args = process.argv.slice(2);
const flagStart = args.findIndex((a) => a.startsWith('-'));
const asked = flagStart < 0 ? args : args.slice(0, flagStart);
const flags = flagStart < 0 ? [] : args.slice(flagStart);
const names = (asked.length > 0 ? asked : Object.keys(BENCHES)) as (keyof typeof BENCHES)[];
let failed = 0;
for (const name of names) {
  if (!(name in BENCHES)) {
    console.error(`unknown benchmark '${name}'; choose from ${Object.keys(BENCHES).join(', ')}`);
    process.exit(2);
  }
  console.log(`\n## ${name}: ${BENCHES[name]}\n`);
  const r = spawnSync(process.execPath, [path.join(here, `${name}.js`), ...flags], {
    stdio: 'inherit',
  });
  if (r.status !== 0) failed++;
}
process.exit(failed === 0 ? 0 : 1);
