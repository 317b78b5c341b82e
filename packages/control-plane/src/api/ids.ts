import { z } from 'zod';

/** Path and body ids: our own format, so garbage is a 404 or a 400 without touching the store. */
export const idSchema = z.string().regex(/^[a-z]{3}_[0-9a-z]{26}$/, 'not a valid id');
export const zoneSchema = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'zone names are lowercase letters, digits and dashes (up to 63)');
export const nameSchema = z.string().trim().min(1, 'must not be empty').max(200);
