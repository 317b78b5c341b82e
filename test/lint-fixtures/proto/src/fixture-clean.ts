// expect: clean
import protobuf from 'protobufjs/minimal.js';
import { toBytes } from './index.js';

export const used = [protobuf, toBytes];
