import { saveRun } from './impl.js';

await saveRun();
