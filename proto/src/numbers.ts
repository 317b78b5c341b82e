// 64-bit fields in this protocol (times in ms, byte counts, spool sequence numbers) stay far
// below 2^53, so they decode as plain numbers instead of Long objects. This module must be
// evaluated before the generated code computes its field defaults.
import $protobuf from 'protobufjs/minimal.js';

($protobuf.util as { Long: unknown }).Long = undefined;
$protobuf.configure();
