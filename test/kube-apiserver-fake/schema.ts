/**
 * The structural part of the published snapshot.storage.k8s.io/v1 CRD schemas (crds/*.yaml, copied
 * unchanged from kubernetes-csi/external-snapshotter client/config/crd at afb2f0d8, 2026-08-21):
 * types, required fields, enums and unknown fields. The CRDs' CEL rules (`x-kubernetes-validations`) are not evaluated,
 * except "exactly one of" on `spec.source`, written out below by hand.
 */
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';

export interface OpenApiSchema {
  type?: string;
  properties?: Record<string, OpenApiSchema>;
  additionalProperties?: OpenApiSchema | boolean;
  items?: OpenApiSchema;
  required?: string[];
  enum?: unknown[];
  format?: string;
  'x-kubernetes-int-or-string'?: boolean;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
}

interface Crd {
  spec: {
    names: { plural: string; kind: string };
    versions: { name: string; served: boolean; schema: { openAPIV3Schema: OpenApiSchema } }[];
  };
}

/** The served v1 schema of each snapshot resource, by plural. */
export function loadSnapshotSchemas(): Map<string, OpenApiSchema> {
  const out = new Map<string, OpenApiSchema>();
  for (const plural of ['volumesnapshots', 'volumesnapshotcontents', 'volumesnapshotclasses']) {
    const file = new URL(`./crds/snapshot.storage.k8s.io_${plural}.yaml`, import.meta.url);
    const crd = parse(readFileSync(file, 'utf8')) as Crd;
    const v1 = crd.spec.versions.find((v) => v.name === 'v1' && v.served);
    if (!v1) throw new Error(`${plural}: the CRD serves no v1`);
    out.set(crd.spec.names.plural, v1.schema.openAPIV3Schema);
  }
  return out;
}

/** Every way `value` breaks `schema`, as `path: problem` (empty when it conforms). */
export function validate(schema: OpenApiSchema, value: unknown, path = ''): string[] {
  const at = path || '<root>';
  if (value === null || value === undefined) return [];
  if (schema['x-kubernetes-int-or-string'])
    return typeof value === 'string' || Number.isInteger(value) ? [] : [`${at}: must be an integer or a string`];
  const problems: string[] = [];
  switch (schema.type) {
    case 'object': {
      if (typeof value !== 'object' || Array.isArray(value)) return [`${at}: must be an object`];
      const obj = value as Record<string, unknown>;
      for (const key of schema.required ?? [])
        if (obj[key] === undefined) problems.push(`${path ? `${path}.` : ''}${key}: Required value`);
      for (const [key, v] of Object.entries(obj)) {
        const sub = schema.properties?.[key];
        const child = path ? `${path}.${key}` : key;
        if (sub) problems.push(...validate(sub, v, child));
        else if (typeof schema.additionalProperties === 'object')
          problems.push(...validate(schema.additionalProperties, v, child));
        else if (schema.properties && !schema['x-kubernetes-preserve-unknown-fields'])
          problems.push(`${child}: unknown field`);
      }
      break;
    }
    case 'array':
      if (!Array.isArray(value)) return [`${at}: must be an array`];
      value.forEach((v, i) => problems.push(...(schema.items ? validate(schema.items, v, `${path}[${i}]`) : [])));
      break;
    case 'string':
      if (typeof value !== 'string') return [`${at}: must be a string`];
      if (schema.format === 'date-time' && Number.isNaN(Date.parse(value)))
        problems.push(`${at}: must be an RFC 3339 date-time`);
      break;
    case 'integer':
      if (!Number.isInteger(value)) return [`${at}: must be an integer`];
      break;
    case 'boolean':
      if (typeof value !== 'boolean') return [`${at}: must be a boolean`];
      break;
    default:
      break;
  }
  if (schema.enum && !schema.enum.includes(value))
    problems.push(`${at}: Unsupported value ${JSON.stringify(value)}: supported values: ${schema.enum.join(', ')}`);
  return problems;
}

/** The CRDs' "exactly one of" CEL rules on `spec.source`, which the structural schema cannot say. */
export function exactlyOneSource(plural: string, body: Record<string, unknown>): string[] {
  const source = ((body['spec'] ?? {}) as Record<string, unknown>)['source'] as Record<string, unknown> | undefined;
  if (!source) return [];
  const pair: Record<string, [string, string]> = {
    volumesnapshots: ['volumeSnapshotContentName', 'persistentVolumeClaimName'],
    volumesnapshotcontents: ['volumeHandle', 'snapshotHandle'],
  };
  const keys = pair[plural];
  if (!keys) return [];
  const set = keys.filter((k) => source[k] !== undefined);
  return set.length === 1 ? [] : [`spec.source: Invalid value: exactly one of ${keys.join(' and ')} must be set`];
}
