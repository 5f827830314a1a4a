import { guarded } from './run/guard.js';
import { runSave } from './run/save.js';

await guarded('save', runSave);
