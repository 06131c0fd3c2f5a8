import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isDeepStrictEqual } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import type { StoredSample, StoredSummary } from '../../functions/adapters/record-store';
import { ATTRIBUTE } from '../../functions/domain/queued-event';
import { resourceNamed } from '../../functions/domain/catalogue';
import { newSigningSecret } from '../support/signing';
import { claimsOf, computeOracle, ksuidOf, sampleIdentity, type Oracle } from './oracle';
import { DEFAULT_FAULTS, startStormPipeline, type StormPipeline } from './pipeline-harness';
import { sendStorm, type SendReport } from './senders';
import { generateStorm, type Storm } from './storm';
import { seededRandom } from '../../functions/domain/seeded-random';

/**
 * The reliability storm: a seeded stream of realistic events for many users, delivered through the
 * local pipeline's HTTP endpoint by concurrent senders with duplicates and disorder, while faults hit
 * every boundary. At the end the stored state must equal the oracle computed from the stream, the
 * events DLQ must hold exactly the planted poison messages, and every 2xx must be stored.
 *
 * `STORM_SIZE` (users, default 6) and `STORM_SEED` (default fixed, printed) pick the storm; the
 * message stream and the delivery order are reproducible from the seed, the exact interleaving of
 * faults is not (it depends on timing).
 */

const SIZE = Number(process.env.STORM_SIZE ?? 6);
const SEED = Number(process.env.STORM_SEED ?? 20_261_122);
const SENDERS = Number(process.env.STORM_SENDERS ?? 8);
const VISIBILITY_TIMEOUT_SECONDS = 3;
/** Like the stack's ratio of visibility timeout to function timeout, as far as a 3 s timeout allows. */
const WORKER_TIMEOUT_SECONDS = 3;

/** Incremental data is generated in May 2024, backfilled history in January 2024. */
const MAY = { from: '2024-04-20T00:00:00+00:00', to: '2024-06-15T00:00:00+00:00' };
const JANUARY = { from: '2023-12-25T00:00:00+00:00', to: '2024-01-20T00:00:00+00:00' };

/** `${seconds}.k${ksuid}` → the KSUID, to compare a stored order with a message id. */
const ksuidOfOrder = (order: string): string => order.replace(/^\d+\.k/, '');

describe(`reliability storm (STORM_SEED=${SEED} STORM_SIZE=${SIZE})`, { timeout: 600_000 }, () => {
  let storm: Storm;
  let oracle: Oracle;
  let pipeline: StormPipeline;
  let report: SendReport;
  const started = Date.now();

  before(async () => {
    console.log(`storm: seed=${SEED} size=${SIZE} (reproduce with STORM_SEED=${SEED} STORM_SIZE=${SIZE})`);
    storm = generateStorm({ seed: SEED, users: SIZE });
    oracle = computeOracle(storm);
    pipeline = await startStormPipeline({
      secret: newSigningSecret(),
      seed: SEED,
      random: seededRandom(SEED ^ 0x5eed),
      rates: DEFAULT_FAULTS,
      visibilityTimeoutSeconds: VISIBILITY_TIMEOUT_SECONDS,
      workerTimeoutSeconds: WORKER_TIMEOUT_SECONDS,
    });
  });

  after(async () => {
    await pipeline?.stop();
  });

  it('the generator is reproducible and the stream is stormy', () => {
    const again = generateStorm({ seed: SEED, users: SIZE });
    assert.deepEqual(again.messages.map((message) => message.svixId), storm.messages.map((message) => message.svixId));
    assert.deepEqual(again.deliveries, storm.deliveries);
    const duplicates = storm.deliveries.length - storm.messages.length;
    assert.ok(duplicates >= storm.messages.length * 0.2, `about 30% duplicate deliveries (${duplicates} of ${storm.messages.length})`);
    assert.ok(storm.inversions > 0, 'some newer versions are delivered before older ones');
    assert.ok(oracle.poisonIds.size >= 2);
  });

  it('delivers every event through faults, and every 2xx is an event that is stored', async () => {
    report = await sendStorm(storm, pipeline.webhookUrl, pipeline.secret, SENDERS);
    assert.deepEqual(report.undelivered, [], 'every event was eventually accepted (senders retry like Svix)');
    for (const status of report.refused.keys()) {
      assert.equal(status, 503, `the only refusals are 503 "queue unavailable" (got ${status})`);
    }
    assert.ok(pipeline.faults.eventsSendFailures > 0, 'SQS send faults were injected');

    // Wait until the pipeline is quiet: both queues empty (poison moved to the DLQ), every backfill finished.
    const poisonCopies = [...oracle.poisonIds].reduce((sum, id) => sum + (pipeline.enqueued.get(id) ?? 0), 0);
    const deadline = Date.now() + 120_000 + SIZE * 2_000;
    for (let quietChecks = 0; quietChecks < 3; ) {
      const [events, backfill] = await Promise.all([
        pipeline.queueDepth(pipeline.resources.queues.events.url),
        pipeline.queueDepth(pipeline.resources.queues.backfill.url),
      ]);
      const statuses = await Promise.all(storm.historical.map((request) => pipeline.statuses.get(request)));
      const backfillsDone = statuses.every((status) => status?.state === 'completed' || status?.state === 'failed');
      quietChecks = events === 0 && backfill === 0 && backfillsDone ? quietChecks + 1 : 0;
      if (Date.now() > deadline) {
        assert.fail(`pipeline not quiet in time: events=${events} backfill=${backfill} backfills=${statuses.map((s) => s?.state).join(',')}`);
      }
      await sleep(quietChecks > 0 ? 500 : 250);
    }
    for (const id of oracle.poisonIds) {
      const outcome = pipeline.outcomes.get(id);
      assert.ok((outcome?.failed ?? 0) > 0, `poison ${id} was reported failed (${JSON.stringify(outcome)}, ${pipeline.enqueued.get(id)} queued)`);
    }

    // Read the stored state through the store's own read functions.
    const lost: string[] = [];
    let recordsChecked = 0;
    const storedSummaries = new Map<string, StoredSummary>();
    const groups = new Map<string, Set<string>>();
    for (const expected of oracle.summaries.values()) {
      const group = `${expected.userId}|${expected.resource}`;
      if (!groups.has(group)) groups.set(group, new Set());
      groups.get(group)!.add(expected.id);
    }
    for (const [group, ids] of groups) {
      const [userId, resource] = group.split('|') as [string, string];
      const stored = resourceNamed(resource)?.timeFields?.length
        ? await pipeline.records.querySummaries(userId, resource, MAY)
        : [];
      const storedIds = new Set(stored.map((record) => String(record.object.id)));
      for (const record of stored) storedSummaries.set(`${group}|${String(record.object.id)}`, record);
      for (const id of ids) {
        if (!storedSummaries.has(`${group}|${id}`)) {
          const direct = await pipeline.records.getSummary(userId, resource, id);
          if (direct) storedSummaries.set(`${group}|${id}`, direct);
        }
      }
      for (const id of storedIds) if (!ids.has(id)) lost.push(`unexpected summary ${resource} ${id} for user ${userId}`);
    }
    for (const [key, expected] of oracle.summaries) {
      recordsChecked += 1;
      const stored = storedSummaries.get(key);
      if (!stored) lost.push(`summary ${expected.resource} ${expected.id} missing`);
      else if (!isDeepStrictEqual(stored.object, expected.object)) {
        lost.push(`summary ${expected.resource} ${expected.id}: stored updated_at ${String(stored.object.updated_at)}, newest ${expected.updatedAt}`);
      }
    }

    const storedSamples = new Map<string, Map<string, StoredSample>>();
    for (const [series, expectedSamples] of oracle.samples) {
      const [userId, resource] = series.split('|') as [string, string];
      const { samples } = await pipeline.records.readTimeseries(userId, resource, MAY);
      const byIdentity = new Map(samples.map((stored) => [sampleIdentity(stored.source.provider, stored.source.type, stored.sample), stored]));
      storedSamples.set(series, byIdentity);
      for (const [identity, expected] of expectedSamples) {
        recordsChecked += 1;
        const stored = byIdentity.get(identity);
        if (!stored) lost.push(`sample ${resource} ${identity} missing`);
        else if (!isDeepStrictEqual(stored.sample, expected.sample) || ksuidOfOrder(stored.order) !== ksuidOf(expected.svixId)) {
          lost.push(`sample ${resource} ${identity}: not the newest message's value`);
        }
      }
      for (const identity of byIdentity.keys()) if (!expectedSamples.has(identity)) lost.push(`unexpected sample ${resource} ${identity}`);
    }

    for (const expected of oracle.connections.values()) {
      recordsChecked += 1;
      const stored = await pipeline.connections.get(expected.userId, expected.provider);
      if (!stored || stored.status !== expected.status || ksuidOfOrder(stored.order) !== ksuidOf(expected.svixId)) {
        lost.push(`connection ${expected.provider} of ${expected.userId}: stored ${stored?.status}, expected ${expected.status}`);
      }
    }

    // Backfills: every record the Vital API holds for an announced range is stored.
    for (const request of storm.historical) {
      const status = await pipeline.statuses.get(request);
      if (status?.state !== 'completed') lost.push(`backfill ${request.resource} of ${request.userId}: ${status?.state} (${status?.lastError ?? ''})`);
      const expected = pipeline.fake.identitiesFor(request.userId, request.provider, request.resource, request.startDate, request.endDate);
      let stored: Set<string>;
      if (resourceNamed(request.resource)?.kind === 'timeseries') {
        const { samples } = await pipeline.records.readTimeseries(request.userId, request.resource, JANUARY);
        stored = new Set(samples.map(({ source, sample }) => `${source.provider}|${source.type}|${String(sample.timestamp)}|${String(sample.type)}`));
      } else {
        const records = await pipeline.records.querySummaries(request.userId, request.resource, JANUARY);
        stored = new Set(records.map((record) => String(record.object.id)));
      }
      assert.ok(expected.size > 0, `the fake API holds data for ${request.resource}`);
      for (const identity of expected) {
        recordsChecked += 1;
        if (!stored.has(identity)) lost.push(`backfilled ${request.resource} ${identity} of ${request.userId} missing`);
      }
    }

    // The events DLQ holds the poison messages and nothing else.
    const dead = await pipeline.drain(pipeline.resources.queues.events.deadLetterUrl);
    const deadIds = dead.map((message) => message.MessageAttributes?.[ATTRIBUTE.svixId]?.StringValue ?? '(none)');
    for (const id of deadIds) if (!oracle.poisonIds.has(id)) lost.push(`non-poison message ${id} in the DLQ`);
    assert.deepEqual(new Set(deadIds), new Set(oracle.poisonIds), 'the DLQ holds every planted poison message');
    // A copy that arrives while another invocation processes the same svix-id is acknowledged (that
    // other copy stays queued until it succeeds or reaches the DLQ), so the DLQ holds at least one
    // copy of each poison message and at most every queued copy.
    assert.ok(dead.length >= oracle.poisonIds.size && dead.length <= poisonCopies, `DLQ holds ${dead.length} copies of ${poisonCopies} queued`);
    assert.deepEqual(await pipeline.drain(pipeline.resources.queues.backfill.deadLetterUrl), [], 'the backfill DLQ is empty');

    // Every 2xx corresponds to an event that is stored (or, for poison, kept in the DLQ).
    const byId = new Map(storm.messages.map((message) => [message.svixId, message]));
    for (const svixId of report.accepted.keys()) {
      const message = byId.get(svixId);
      assert.ok(message, 'every accepted id is one the storm sent');
      if (message.kind === 'poison') continue;
      for (const claim of claimsOf(message)) {
        if (claim.kind === 'summary') {
          const stored = storedSummaries.get(claim.key);
          if (!stored || String(stored.object.updated_at) < claim.updatedAt) lost.push(`accepted ${svixId}: summary not stored`);
        } else if (claim.kind === 'sample') {
          const stored = storedSamples.get(claim.series)?.get(claim.identity);
          if (!stored || ksuidOfOrder(stored.order) < ksuidOf(svixId)) lost.push(`accepted ${svixId}: sample ${claim.identity} not stored`);
        } else if (claim.kind === 'connection') {
          const [userId, provider] = claim.key.split('|') as [string, string];
          const stored = await pipeline.connections.get(userId, provider);
          if (!stored || ksuidOfOrder(stored.order) < ksuidOf(svixId)) lost.push(`accepted ${svixId}: connection not stored`);
        } else {
          const status = await pipeline.statuses.get(claim);
          if (status?.runId !== svixId || status.state !== 'completed') lost.push(`accepted ${svixId}: backfill run not completed`);
        }
      }
    }
    const acceptedIds = new Set(report.accepted.keys());
    for (const message of storm.messages) if (!acceptedIds.has(message.svixId)) lost.push(`${message.svixId} never accepted`);

    const enqueuedTotal = [...pipeline.enqueued.values()].reduce((sum, count) => sum + count, 0);
    const delivered = [...report.accepted.values()].reduce((sum, count) => sum + count, 0);
    const { faults } = pipeline;
    const vitalTransient = pipeline.vitalTransientFaults();
    const faultTotal =
      faults.eventsSendFailures + faults.eventsSendLostAnswers + faults.backfillSendFailures + faults.dynamoThrottlesRetried +
      faults.dynamoThrottlesSurfaced + faults.workerCrashes + vitalTransient + faults.vitalTimeouts;
    console.log(
      `storm: messages=${storm.messages.length} deliveries=${storm.deliveries.length} attempts=${report.attempts} ` +
        `refused_503=${report.refused.get(503) ?? 0} out_of_order_identities=${storm.inversions} poison=${oracle.poisonIds.size} ` +
        `backfills=${storm.historical.length} backfill_sends=${pipeline.backfillSends()} vital_requests=${pipeline.fake.counters.requests} seconds=${((Date.now() - started) / 1000).toFixed(1)}`,
    );
    console.log(
      `storm: faults sqs_send=${faults.eventsSendFailures} sqs_lost_answer=${faults.eventsSendLostAnswers} ` +
        `backfill_send=${faults.backfillSendFailures} dynamo_throttle_sdk_retried=${faults.dynamoThrottlesRetried} ` +
        `dynamo_throttle_surfaced=${faults.dynamoThrottlesSurfaced} worker_crash=${faults.workerCrashes} ` +
        `vital_429_503=${vitalTransient} vital_timeout=${faults.vitalTimeouts}`,
    );
    for (const line of lost.slice(0, 20)) console.log(`storm: LOST ${line}`);
    console.log(
      `storm: delivered=${delivered} duplicates=${enqueuedTotal - pipeline.enqueued.size} faults=${faultTotal} ` +
        `records_checked=${recordsChecked} lost=${lost.length}`,
    );
    assert.deepEqual(lost, [], 'nothing lost, nothing doubled, nothing stale');
    // Every boundary was hit (a tiny storm may be too small to hit them all).
    if (SIZE >= 6) {
      const kinds = { ...faults, vitalTransient };
      for (const [kind, count] of Object.entries(kinds)) assert.ok(count > 0, `fault ${kind} was injected at least once`);
    }
  });
});
