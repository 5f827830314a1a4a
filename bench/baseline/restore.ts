import { restoreRun } from './impl.js';

await restoreRun();
