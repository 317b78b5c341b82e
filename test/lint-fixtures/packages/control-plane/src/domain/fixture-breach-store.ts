// expect: import-x/no-restricted-paths domain/ holds pure rules: it imports only other domain/ files
import { isUniqueViolation } from '../store/db.js';

export const used = isUniqueViolation;
