// expect: @typescript-eslint/no-restricted-imports import a workspace package by its name and its exports
import { encodeFrame } from '@cairn/proto/src/index.js';

export const used = encodeFrame;
