// expect: @typescript-eslint/no-restricted-imports store/ imports no repository, not even its type
// A repository taking another as a constructor argument: the call between them belongs in lifecycle/.
import type { EventRepository } from './event-repository.js';

export type Used = EventRepository;
