/**
 * `npm run demo`: the action end to end as the runner would run it, on the demo C project,
 * against the loopback runner-cache service. Four jobs: a miss that builds and saves to both
 * tiers; a hit from the local store on a wiped workspace; a hit from the runner cache with an
 * empty local store; a fallback after a source edit, which rebuilds and saves a new entry.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { createWorld, runDemoJob, type JobRun, type World } from '../test-support/world.js';

function show(title: string, run: JobRun): void {
  const o = run.main.outputs;
  console.log(`\n=== ${title}`);
  console.log(`  cache-hit:   ${o['cache-hit'] ?? ''}`);
  console.log(`  tier:        ${o['tier'] ?? ''} (${o['hit-kind'] ?? ''})`);
  console.log(`  cache-key:   ${o['cache-key'] ?? ''}`);
  console.log(`  matched-key: ${o['matched-key'] || '(none)'}`);
  console.log(`  build:       ${run.built ? 'ran make' : 'skipped (exact hit)'}`);
  if (run.built) {
    for (const line of run.buildLog.trim().split('\n')) console.log(`    | ${line}`);
  }
  const post = run.posts[0];
  const saved = post?.stdout
    .split('\n')
    .filter((l) => /^(Local store|Runner cache|Not saving)/.test(l))
    .map((l) => l.trim());
  console.log(`  post:        ${post?.skipped ? 'skipped' : (saved ?? []).join(' | ')}`);
  const warnings = [...run.main.annotations, ...(post?.annotations ?? [])].filter(
    (a) => a.level !== 'notice',
  );
  for (const w of warnings) console.log(`  ${w.level}: ${w.message}`);
}

async function main(): Promise<void> {
  const world: World = await createWorld();
  try {
    console.log(`workspace:   ${world.workspace} (a git checkout of demo/project)`);
    console.log(`local store: ${world.localStore}`);
    console.log(`runner cache service: ${world.service.url}`);

    show('job 1: cold cache', await runDemoJob(world));

    await fs.rm(path.join(world.workspace, 'out'), { recursive: true, force: true });
    show('job 2: wiped workspace, same sources', await runDemoJob(world));

    await fs.rm(path.join(world.workspace, 'out'), { recursive: true, force: true });
    await fs.rm(world.localStore, { recursive: true, force: true });
    show('job 3: fresh runner (empty local store)', await runDemoJob(world));

    const src = path.join(world.workspace, 'src');
    const file = (await fs.readdir(src)).filter((f) => f.endsWith('.c')).sort()[0]!;
    // A real code change (a comment alone would compile to identical objects, which the
    // store would then deduplicate down to nothing new).
    await fs.appendFile(path.join(src, file), '\nint clyde_demo_edit(void) { return 4; }\n');
    show(`job 4: after editing src/${file}`, await runDemoJob(world));

    console.log(
      `\nrunner cache now holds: ${world.service
        .entries()
        .map((e) => `${e.key} (${e.sizeBytes} bytes)`)
        .join(', ')}`,
    );
  } finally {
    await world.close();
  }
}

await main();
