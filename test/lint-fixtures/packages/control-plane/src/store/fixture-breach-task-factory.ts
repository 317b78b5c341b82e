// expect: @typescript-eslint/no-restricted-imports store/ makes no task
// A store module making a task with the task factory.
import { instanceTask } from '../domain/task-factory.js';

export const used = instanceTask;
