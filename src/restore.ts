import { guarded } from './run/guard.js';
import { runRestore } from './run/restore.js';

await guarded('restore', runRestore);
