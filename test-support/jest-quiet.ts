/**
 * Jest setup (package.json `setupFiles`): code under test that runs in the test process (the
 * store, @actions/core, @actions/cache) writes workflow commands and tool echoes to stdout, which
 * the runner would fold away but a terminal shows. They are dropped here, so `npm test` prints
 * what Jest reports; CLYDE_TEST_VERBOSE=1 keeps them. Tests that read what a step printed run
 * dist/ in a child process (test-support/runner.ts) and see every line there.
 */
const NOISE = new RegExp(
  `^(?:${[
    // workflow commands (::debug::, ::add-mask::, ::warning::, ...) and @actions/exec echoes
    '::[a-z-]+(::| )',
    '\\[command\\]',
    // @actions/cache's info lines, when the tests drive it in this process
    'Sent \\d+ of \\d+',
    'Received \\d+ of \\d+',
    'Cache (hit for|Size:|restored|saved|not found)',
    'Lookup only',
    'Attempt \\d+ of \\d+ failed',
    'Failed to (save|restore):',
  ].join('|')})`,
);

if (process.env['CLYDE_TEST_VERBOSE'] !== '1') {
  const write = process.stdout.write.bind(process.stdout) as (...args: unknown[]) => boolean;
  process.stdout.write = ((chunk: unknown, ...rest: unknown[]): boolean => {
    if (typeof chunk === 'string' || Buffer.isBuffer(chunk)) {
      const text = chunk.toString();
      const kept = text
        .split(/(?<=\n)/)
        .filter((line) => !NOISE.test(line))
        .join('');
      if (kept === '') return true;
      return write(kept, ...rest);
    }
    return write(chunk, ...rest);
  }) as typeof process.stdout.write;
}

export {};
