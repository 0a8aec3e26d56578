// Audits a running Galley: graphql-http's GraphQL-over-HTTP server audits (every one must be
// ok: no warning, no error), then schema.graphql with graphql-js (it builds and validates)
// compared with the live introspection (graphql-js's own getIntrospectionQuery()), in which
// every type and argument must have a description.
//
// Usage: GALLEY_URL=http://127.0.0.1:8080/graphql GALLEY_TOKEN=glly_… \
//        GALLEY_SCHEMA=../../schema.graphql node audit.mjs
import { readFileSync } from 'node:fs';
import { auditServer } from 'graphql-http';
import {
  buildClientSchema,
  buildSchema,
  getIntrospectionQuery,
  lexicographicSortSchema,
  printSchema,
  validateSchema,
} from 'graphql';

const url = process.env.GALLEY_URL;
const token = process.env.GALLEY_TOKEN;
const schemaPath = process.env.GALLEY_SCHEMA;
if (!url || !token || !schemaPath) {
  console.error('GALLEY_URL, GALLEY_TOKEN and GALLEY_SCHEMA are required');
  process.exit(2);
}

// Every request carries the token: the audits are about the transport, and Galley answers
// UNAUTHENTICATED to anything without one.
const authorised = (input, init = {}) => {
  const headers = new Headers(init.headers);
  headers.set('authorization', `Bearer ${token}`);
  return fetch(input, { ...init, headers });
};

let failed = false;
const results = await auditServer({ url, fetchFn: authorised });
for (const r of results) {
  if (r.status !== 'ok') {
    failed = true;
    console.log(`${r.status.toUpperCase()} ${r.id} ${r.name}: ${r.reason}`);
  }
}
console.log(`audits: ${results.filter((r) => r.status === 'ok').length} ok of ${results.length}`);

const sdl = buildSchema(readFileSync(schemaPath, 'utf8'));
const errors = validateSchema(sdl);
if (errors.length > 0) {
  failed = true;
  for (const e of errors) console.log(`schema.graphql: ${e.message}`);
}
const res = await authorised(url, {
  method: 'POST',
  headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
  body: JSON.stringify({ query: getIntrospectionQuery() }),
});
const body = await res.json();
if (res.status !== 200 || body.errors) {
  failed = true;
  console.log(`introspection: ${res.status} ${JSON.stringify(body.errors)}`);
} else {
  const client = buildClientSchema(body.data);
  // Every type (scalars included) and every argument is described.
  const undescribed = [];
  for (const type of Object.values(client.getTypeMap())) {
    if (type.name.startsWith('__')) continue;
    if (!type.description) undescribed.push(type.name);
    const fields = typeof type.getFields === 'function' ? Object.values(type.getFields()) : [];
    for (const field of fields) {
      for (const arg of field.args ?? []) {
        if (!arg.description) undescribed.push(`${type.name}.${field.name}(${arg.name})`);
      }
    }
  }
  if (undescribed.length > 0) {
    failed = true;
    console.log(`without a description: ${undescribed.join(', ')}`);
  } else {
    console.log('every type and argument has a description');
  }
  const live = printSchema(lexicographicSortSchema(client));
  const file = printSchema(lexicographicSortSchema(sdl));
  if (live !== file) {
    failed = true;
    console.log('schema.graphql differs from the live introspection');
    const a = file.split('\n');
    const b = live.split('\n');
    for (let i = 0; i < Math.max(a.length, b.length); i++) {
      if (a[i] !== b[i]) {
        console.log(`first difference at line ${i + 1}:\n  file: ${a[i]}\n  live: ${b[i]}`);
        break;
      }
    }
  } else {
    console.log('schema.graphql validates and equals the live introspection');
  }
}
process.exit(failed ? 1 : 0);
