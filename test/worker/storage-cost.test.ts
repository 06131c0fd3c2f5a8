import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { TABLES } from '../../functions/shared/resources';
import { createTables } from '../../local/provision';
import { LOCAL_AWS, startDynamoDbLocal, type RunningStandIn } from '../../local/stand-ins';
import { measureDenseTimeseriesCost } from '../../local/storage-cost';

describe('storage cost of dense timeseries (DynamoDB Local consumed capacity)', () => {
  let dynamo: RunningStandIn;
  let client: DynamoDBClient;
  before(async () => {
    dynamo = await startDynamoDbLocal();
    client = new DynamoDBClient({ endpoint: dynamo.endpoint, ...LOCAL_AWS });
  });
  after(async () => {
    client.destroy();
    await dynamo.stop();
  });

  it('stores a day of 1 Hz heart rate at <= 0.1 write units per sample and reads it back in <= 50 requests', async () => {
    const env = await createTables(client, 'cost-');
    const cost = await measureDenseTimeseriesCost({
      documents: DynamoDBDocumentClient.from(client),
      summariesTable: env[TABLES.summaries.envVar]!,
      timeseriesTable: env[TABLES.timeseries.envVar]!,
      eventMinutes: 5,
    });
    console.log(JSON.stringify(cost));
    assert.equal(cost.samples, 86_400);
    assert.ok(cost.writeUnits > 0, 'DynamoDB Local reported consumed capacity');
    assert.ok(cost.writeUnitsPerSample <= 0.1, `${cost.writeUnitsPerSample} write units per sample`);
    assert.ok(cost.readRequestsForDay <= 50, `${cost.readRequestsForDay} read requests`);
  });
});
