import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { TABLES } from '../../functions/shared/resources';
import { createTables } from '../../local/provision';
import { LOCAL_AWS, type RunningStandIn } from '../../local/stand-ins';
import { DELIVERY_PATTERNS, measureDenseTimeseriesCost } from '../../local/storage-cost';
import { startTestDynamoDb, uniquePrefix } from '../support/dynamodb-local';

/**
 * The cost targets of docs/storage.md on the real store, as DynamoDB Local counts capacity (write
 * units are deterministic: sizes, not timings): a day of 1 Hz heart rate at <= 0.05 write units per
 * stored sample in both delivery patterns, read back in <= 10 requests, one instant in 1 request.
 */

describe('storage cost of dense timeseries (DynamoDB Local consumed capacity)', () => {
  let dynamo: RunningStandIn;
  let client: DynamoDBClient;
  before(async () => {
    dynamo = await startTestDynamoDb();
    client = new DynamoDBClient({ endpoint: dynamo.endpoint, ...LOCAL_AWS });
  });
  after(async () => {
    client.destroy();
    await dynamo.stop();
  });

  for (const pattern of DELIVERY_PATTERNS) {
    it(`${pattern}: <= 0.05 write units per sample, the day in <= 10 requests, an instant in 1`, async () => {
      const env = await createTables(client, uniquePrefix(`cost-${pattern.replace(/\W+/g, '-')}-`));
      const cost = await measureDenseTimeseriesCost({
        documents: DynamoDBDocumentClient.from(client),
        summariesTable: env[TABLES.summaries.envVar]!,
        timeseriesTable: env[TABLES.timeseries.envVar]!,
        pattern,
      });
      console.log(JSON.stringify(cost));
      assert.equal(cost.samples, 86_400);
      assert.ok(cost.writeUnits > 0, 'DynamoDB Local reported consumed capacity');
      assert.ok(cost.writeUnitsPerSample <= 0.05, `${cost.writeUnitsPerSample} write units per sample`);
      assert.ok(cost.readRequestsForDay <= 10, `${cost.readRequestsForDay} read requests for the day`);
      assert.equal(cost.readRequestsForInstant, 1, 'one Query for the samples at an instant');
    });
  }
});
