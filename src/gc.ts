import { runGc } from './run/gc.js';
import { guarded } from './run/guard.js';

await guarded('gc', runGc);
