/**
 * Writes the JSON Schema of each change event's detail to docs/events/ (`npm run docs:events`), from
 * the zod schemas in functions/domain/change-event-schemas.ts. test/domain/change-events.test.ts fails when
 * the files and the schemas differ, so the docs cannot drift from what the pipeline publishes.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { CHANGE_DETAIL_TYPES, detailJsonSchema, detailSchemaFile } from '../functions/domain/change-event-schemas';

const folder = path.join(import.meta.dirname, '..', 'docs', 'events');
for (const detailType of CHANGE_DETAIL_TYPES) {
  await writeFile(path.join(folder, detailSchemaFile(detailType)), `${JSON.stringify(detailJsonSchema(detailType), null, 2)}\n`);
}
