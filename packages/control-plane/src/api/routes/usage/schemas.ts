import { z } from '@hono/zod-openapi';

export const Usage = z
  .object({
    items: z.array(
      z.object({
        tenantId: z.string(),
        protectedInstances: z.number().int(),
        unprotectedInstances: z.number().int(),
        rpoBreachedInstances: z.number().int(),
        backups: z.number().int(),
        storedBytes: z.number(),
        protectedBytes: z.number(),
      }),
    ),
    nextCursor: z.string().nullable(),
  })
  .openapi('Usage');
