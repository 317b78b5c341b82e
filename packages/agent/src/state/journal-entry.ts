import { z } from 'zod';

export const journalEntrySchema = z.object({
  taskId: z.string().min(1),
  attempt: z.int().positive(),
  operation: z.string(),
  plugin: z.string().default(''),
  /** `rejected` and `finished` both mean "this attempt is over on this agent". */
  state: z.enum(['running', 'finished', 'rejected']),
  startedAt: z.number(),
  endedAt: z.number().optional(),
});

/** What the agent remembers about the latest attempt of one task it was assigned. */
export type JournalEntry = z.infer<typeof journalEntrySchema>;
