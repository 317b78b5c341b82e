// expect: import-x/no-restricted-paths domain/ holds pure rules: it imports only other domain/ files.
import { reactToTaskEnds } from '../lifecycle/task-end.js';

export const used = reactToTaskEnds;
