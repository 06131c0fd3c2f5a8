import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isDeepStrictEqual } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import type { StoredSample, StoredSummary } from '../../functions/adapters/record-store';
import { ATTRIBUTE } from '../../functions/domain/queued-event';
import { resourceNamed } from '../../functions/domain/catalogue';
import { newSigningSecret } from '../support/signing';
import { messageCreatedAtMs } from '../../functions/domain/message-order';
import { claimsOf, computeOracle, ksuidOf, QUEUE_MESSAGE_LIMIT_BYTES, sampleIdentity, type Oracle } from './oracle';
import { DEFAULT_FAULTS, startStormPipeline, type StormPipeline } from './pipeline-harness';
import { sendStorm, type SendReport } from './senders';
import { generateStorm, LARGE_BATCH_SAMPLES, TEAM_ID, type HistoricalRequest, type Storm, type StormOptions } from './storm';
import { seededRandom } from '../../functions/domain/seeded-random';
import { BUCKET, consumerTimeouts, QUEUES } from '../../functions/shared/resources';
import { inspectHeldBack } from '../../cli/commands/held-back';
import { inspectUnrecognised } from '../../cli/commands/unrecognised';
import { localTarget } from '../../cli/target';

/**
 * The reliability storm: a seeded stream of realistic events for many users, delivered through the
 * local pipeline's HTTP endpoint by concurrent senders with duplicates and disorder, while faults hit
 * every boundary. At the end the stored state must equal the oracle computed from the stream, the
 * events DLQ must hold exactly the planted poison messages, and every 2xx must be stored.
 *
 * The stream also carries heartrate batches past 1 MiB (claim-checked through S3), workout_stream
 * notices for workouts the API holds (streams fetched into S3), a second historical event for some
 * backfills, workout history (a page of workouts, one stream request each, under 429s with
 * `Retry-After`), another team's events (quarantined, with EXPECTED_TEAM_ID set) and events of
 * unknown types (kept under unrecognised/ and listed by `inspect unrecognised`), and the signing
 * secret is rotated part-way through (late retries still signed with the old secret must pass). The
 * Vital API sends some records breaking the schema (held back and listed by `inspect held-back`),
 * and rejects the pipeline's key at first: backfills wait for it and go on once it is fixed.
 *
 * The pipeline is the local runner's (`startLocalPipeline`, as `npm start` runs it), faults injected
 * through its hooks (pipeline-harness.ts).
 *
 * `STORM_SIZE` (users, default 6) and `STORM_SEED` (default fixed, printed) pick the storm; the
 * message stream and the delivery order are reproducible from the seed, the exact interleaving of
 * faults is not (it depends on timing).
 */

const SIZE = Number(process.env.STORM_SIZE ?? 6);
const SEED = Number(process.env.STORM_SEED ?? 20_261_122);
const SENDERS = Number(process.env.STORM_SENDERS ?? 8);
/**
 * The stack's timeouts scaled by 1/20, the ratio kept: the worker times out after 1.5 s and a failed
 * event comes back 9 s later, the backfill after 6 s (36 s). A worker batch that outlives its
 * timeout (a claim-checked 1.2 MB batch under throttling, on a loaded machine) is retried, never
 * run twice at once.
 */
const TIME_SCALE = 1 / 20;

/** Incremental data is generated in May 2024, backfilled history in January 2024. */
const MAY = { from: '2024-04-20T00:00:00+00:00', to: '2024-06-15T00:00:00+00:00' };
const JANUARY = { from: '2023-12-25T00:00:00+00:00', to: '2024-01-20T00:00:00+00:00' };

/** `${seconds}.k${ksuid}` → the KSUID, to compare a stored order with a message id. */
const ksuidOfOrder = (order: string): string => order.replace(/^\d+\.k/, '');
/** The Unix seconds an order key starts with. */
const secondsOfOrder = (order: string): number => Number(order.slice(0, 10));
/** `raw-bodies/2026-01-01/msg_....json` → `msg_...`. */
const svixIdOfKey = (key: string): string => decodeURIComponent(key.slice(key.lastIndexOf('/') + 1).replace(/\.json$/, ''));
/** The signing secret's value in the store during the rotation, as the verifier parses it. */
const rotatedValue = (current: string, previous: string): string => JSON.stringify({ current, previous });
/** How long the verifier trusts its cached secrets, and the least time between failure-driven refetches. */
const SECRET_CACHE = { maxAgeMs: 300_000, minRefreshIntervalMs: 250 };
/**
 * The 401 phase: the Vital API rejects the pipeline's key (not yet valid, as right after a deploy)
 * until this many backfills wait for it (`waiting_for_api_key`); then the key is fixed.
 */
const BACKFILLS_WAITING_FOR_KEY = 2;

describe(`reliability storm (STORM_SEED=${SEED} STORM_SIZE=${SIZE})`, { timeout: 600_000 }, () => {
  let storm: Storm;
  let oracle: Oracle;
  let pipeline: StormPipeline;
  let report: SendReport;
  let stormOptions: StormOptions;
  const oldSecret = newSigningSecret();
  const newSecret = newSigningSecret();
  const started = Date.now();

  before(async () => {
    console.log(`storm: seed=${SEED} size=${SIZE} (reproduce with STORM_SEED=${SEED} STORM_SIZE=${SIZE})`);
    pipeline = await startStormPipeline({
      secret: oldSecret,
      seed: SEED,
      random: seededRandom(SEED ^ 0x5eed),
      rates: DEFAULT_FAULTS,
      timeScale: TIME_SCALE,
      expectedTeamId: TEAM_ID,
      signingSecretCache: SECRET_CACHE,
    });
    // The fake API's workouts are deterministic in its seed; listing them is also what makes the fake
    // serve their streams (it knows a workout once it has listed it), as the real API knows its own.
    stormOptions = {
      seed: SEED,
      users: SIZE,
      workoutsOf: (userId, provider, startDate, endDate) => pipeline.fake.identitiesFor(userId, provider, 'workouts', startDate, endDate),
    };
    storm = generateStorm(stormOptions);
    oracle = computeOracle(storm);
  });

  after(async () => {
    await pipeline?.stop();
  });

  /** Identities of a user's records of `resource` stored in January (backfilled history), with repeats. */
  async function storedInJanuary(userId: string, resource: string): Promise<string[]> {
    if (resourceNamed(resource)?.kind === 'timeseries') {
      const { samples } = await pipeline.records.readTimeseries(userId, resource, JANUARY);
      return samples.map(({ source, sample }) => `${source.provider}|${source.type}|${String(sample.timestamp)}|${String(sample.type)}`);
    }
    return (await pipeline.records.querySummaries(userId, resource, JANUARY)).map((record) => String(record.object.id));
  }

  /** Differences between what the API holds and what is stored: missing, unexpected and doubled records, summarised. */
  function compareBackfilled(key: { userId: string; resource: string }, expected: ReadonlySet<string>, stored: readonly string[]): string[] {
    const storedSet = new Set(stored);
    const missing = [...expected].filter((identity) => !storedSet.has(identity));
    const unexpected = [...storedSet].filter((identity) => !expected.has(identity));
    const label = `backfilled ${key.resource} of ${key.userId}`;
    return [
      ...(missing.length ? [`${label}: ${missing.length} of ${expected.size} records the API holds are missing (${missing[0]} .. ${missing.at(-1)})`] : []),
      ...(unexpected.length ? [`${label}: ${unexpected.length} records stored that the API does not hold (${unexpected[0]} ..)`] : []),
      ...(storedSet.size !== stored.length ? [`${label}: ${stored.length - storedSet.size} records stored twice`] : []),
    ];
  }

  /**
   * What the API holds for a backfill's key in a range: the records it sends readable (to be stored)
   * and those it sends breaking the schema (to be held back). The fake breaks the same records on
   * every request, so a record it ever sent broken is one that no fetch could store.
   */
  function heldByApi(key: { userId: string; provider: string; resource: string }, range: { startDate: string; endDate: string }) {
    const sentBroken = pipeline.fake.counters.broken.get(`${key.userId}/${key.resource}`) ?? new Set<string>();
    const all = [...pipeline.fake.identitiesFor(key.userId, key.provider, key.resource, range.startDate, range.endDate)];
    return { readable: new Set(all.filter((identity) => !sentBroken.has(identity))), broken: new Set(all.filter((identity) => sentBroken.has(identity))) };
  }

  /** When the senders first got a 2xx for `svixId`, ms after the first attempt of the storm. */
  const acceptedAt = (svixId: string): string => {
    const first = Math.min(...report.log.map((attempt) => attempt.startedAtMs));
    const at = report.log.find((attempt) => attempt.svixId === svixId && attempt.status >= 200 && attempt.status < 300)?.startedAtMs;
    return at === undefined ? 'never' : `+${at - first} ms`;
  };

  it('the generator is reproducible and the stream is stormy', () => {
    const again = generateStorm(stormOptions);
    assert.deepEqual(again.messages.map((message) => message.svixId), storm.messages.map((message) => message.svixId));
    assert.deepEqual(again.messages.map((message) => message.body), storm.messages.map((message) => message.body));
    assert.deepEqual(again.deliveries, storm.deliveries);
    assert.deepEqual(again.signing, storm.signing);
    const duplicates = storm.deliveries.length - storm.messages.length;
    assert.ok(duplicates >= storm.messages.length * 0.2, `about 30% duplicate deliveries (${duplicates} of ${storm.messages.length})`);
    assert.ok(storm.inversions > 0, 'some newer versions are delivered before older ones');
    assert.ok(oracle.poisonIds.size >= 2);
    // The additions are all there, however small the storm.
    assert.ok(oracle.claimChecked.size >= 1, 'some bodies exceed one queue message');
    for (const svixId of oracle.claimChecked) {
      const message = storm.messages.find((candidate) => candidate.svixId === svixId)!;
      assert.equal(message.eventType, 'daily.data.heartrate.created');
      assert.ok(Buffer.byteLength(message.body) > QUEUE_MESSAGE_LIMIT_BYTES * 1.1, 'well past 1 MiB, whatever the attributes weigh');
    }
    assert.ok(oracle.streams.size >= 1, 'workout streams are announced');
    assert.ok([...oracle.backfills.values()].some((backfill) => backfill.runs.length > 1), 'some backfill is announced twice');
    assert.ok(storm.historicalInversions.length >= 1, 'a newer historical event is delivered before the older one');
    assert.ok(oracle.foreign.size >= 2, 'another team sends events');
    assert.ok(oracle.unrecognised.size >= 2, 'events of unknown types are sent');
    assert.ok(storm.historical.some((request) => request.resource === 'workouts'), 'workout history is backfilled');
    assert.ok(storm.rotationAt > 0 && storm.rotationAt < storm.deliveries.length, 'the secret rotates part-way through');
    for (const kind of ['old', 'new', 'both'] as const) {
      assert.ok(storm.signing.some((signing, position) => position >= storm.rotationAt && signing === kind), `after the rotation some deliveries are signed ${kind}`);
    }
  });

  /** Why the stored stream of a workout is not the one the API serves; undefined when it is. */
  async function streamDiffers(userId: string, provider: string, workoutId: string): Promise<string | undefined> {
    const object = await pipeline.getObject(pipeline.streams.keyOf(userId, provider, workoutId));
    if (!object) return 'not in S3';
    const served = await fetch(`${pipeline.fake.url}/v2/timeseries/workouts/${encodeURIComponent(workoutId)}/stream`, {
      headers: { 'x-vital-api-key': pipeline.apiKey },
    });
    assert.equal(served.status, 200, `the API holds the stream of ${workoutId}`);
    return isDeepStrictEqual(JSON.parse(object.body), await served.json()) ? undefined : "stored body differs from the API's";
  }

  /**
   * Rejects the pipeline's API key until BACKFILLS_WAITING_FOR_KEY backfills wait for it, or the
   * senders are done (`sent`), then fixes it. Resolves the backfills seen waiting, with the run that waited.
   */
  async function keyFixedOnceBackfillsWait(sent: () => boolean): Promise<Map<string, HistoricalRequest & { waitingRunId: string }>> {
    pipeline.fake.setApiKey(`${pipeline.apiKey}-not-valid-yet`);
    const waited = new Map<string, HistoricalRequest & { waitingRunId: string }>();
    while (waited.size < BACKFILLS_WAITING_FOR_KEY && !sent()) {
      for (const request of storm.historical) {
        const status = await pipeline.statuses.get(request);
        if (status?.state === 'waiting_for_api_key') waited.set(`${request.userId}|${request.provider}|${request.resource}`, { ...request, waitingRunId: status.runId });
      }
      await sleep(200);
    }
    pipeline.fake.setApiKey(pipeline.apiKey);
    return waited;
  }

  it('delivers every event through faults, and every 2xx is an event that is stored', async () => {
    let sent = false;
    const keyPhase = keyFixedOnceBackfillsWait(() => sent);
    report = await sendStorm(
      storm,
      pipeline.webhookUrl,
      { old: oldSecret, new: newSecret, rotate: () => pipeline.setSigningSecretValue(rotatedValue(newSecret, oldSecret)) },
      SENDERS,
    ).finally(() => (sent = true));
    const waitedForKey = await keyPhase;
    assert.deepEqual(report.undelivered, [], 'every event was eventually accepted (senders retry like Svix)');
    // The verifier's cache held the old secret alone until an attempt signed with the new secret alone
    // failed and refetched it; attempts of that kind racing that refetch may be refused once (401),
    // and Svix retries them. No other attempt may ever be refused for its signature.
    const rotatedRead = pipeline.signingSecretReads.find((read) => read.value !== oldSecret);
    assert.ok(rotatedRead, 'the verifier read the rotated secret value');
    assert.ok(rotatedRead.atMs >= report.rotatedAtMs!, 'and only after the rotation');
    const refusedForSignature = report.log.filter((attempt) => attempt.status === 401);
    for (const attempt of refusedForSignature) {
      assert.ok(
        attempt.signing === 'new' && attempt.startedAtMs <= rotatedRead.atMs,
        `401 only for new-secret attempts sent before the verifier refetched (${JSON.stringify(attempt)}, refetched at ${rotatedRead.atMs})`,
      );
    }
    for (const status of report.refused.keys()) {
      assert.ok(status === 503 || status === 401, `the only refusals are 503 "queue unavailable" and the rotation's 401s (got ${status})`);
    }
    const acceptedAfterRotation = (signing: string) =>
      report.log.filter((attempt) => attempt.startedAtMs > report.rotatedAtMs! && attempt.signing === signing && attempt.status >= 200 && attempt.status < 300).length;
    const lateOld = acceptedAfterRotation('old');
    assert.ok(lateOld > 0, 'late retries signed with the old secret were accepted after the rotation');
    assert.ok(acceptedAfterRotation('new') > 0 && acceptedAfterRotation('both') > 0, 'and so were new-secret and dual-signed attempts');
    assert.ok(pipeline.faults.eventsSendFailures > 0, 'SQS send faults were injected');

    // Wait until the pipeline is quiet: both queues empty (poison moved to the DLQ), every backfill finished.
    const poisonCopies = [...oracle.poisonIds].reduce((sum, id) => sum + (pipeline.enqueued.get(id) ?? 0), 0);
    // A backfill job whose step failed (an injected SQS or Vital fault) comes back one visibility
    // timeout later, and may fail again up to its last receive: allow for that many, as scaled.
    const redeliveriesMs = (QUEUES.backfill.maxReceiveCount - 1) * consumerTimeouts(QUEUES.backfill, TIME_SCALE).visibilityTimeoutSeconds * 1000;
    const deadline = Date.now() + 120_000 + SIZE * 2_000 + redeliveriesMs;
    const { queues } = pipeline.state;
    for (let quietChecks = 0; quietChecks < 3; ) {
      const [events, backfill] = await Promise.all([pipeline.queueDepth(queues.events.url), pipeline.queueDepth(queues.backfill.url)]);
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
        const differing = [...new Set([...Object.keys(stored.object), ...Object.keys(expected.object)])].filter(
          (field) => !isDeepStrictEqual(stored.object[field], expected.object[field]),
        );
        lost.push(
          `summary ${expected.resource} ${expected.id}: stored updated_at ${String(stored.object.updated_at)}, newest ${expected.updatedAt}; ` +
            `fields differing: ${differing.map((field) => `${field}=${JSON.stringify(stored.object[field])?.slice(0, 80)} vs ${JSON.stringify(expected.object[field])?.slice(0, 80)}`).join(', ')}`,
        );
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

    // What the CLI lists, found through the pipeline's data folder as a user's `vital-pipeline` finds it.
    const target = await localTarget(pipeline.dataDir);
    const [unrecognisedListed, heldBackListed] = await Promise.all([inspectUnrecognised(target), inspectHeldBack(target)]).finally(() => target.close());

    // Backfills announced once: the run completed; January holds exactly the records the Vital API
    // sends readable for the range, each once; every record it sends breaking the schema is held back,
    // counted in the run's status and listed by `inspect held-back`. Keys announced twice have their
    // own test below.
    for (const backfill of oracle.backfills.values()) {
      if (backfill.runs.length > 1) continue;
      const run = backfill.runs[0]!;
      const label = `backfill ${backfill.resource} of ${backfill.userId}`;
      const status = await pipeline.statuses.get(backfill);
      if (status?.runId !== run.svixId || status.state !== 'completed') lost.push(`${label}: run ${status?.runId} ${status?.state} (${status?.lastError ?? ''})`);
      const { readable, broken } = heldByApi(backfill, run);
      assert.ok(readable.size > 0, `the fake API holds data for ${backfill.resource}`);
      recordsChecked += readable.size + broken.size;
      lost.push(...compareBackfilled(backfill, readable, await storedInJanuary(backfill.userId, backfill.resource)));
      const listed = heldBackListed.filter((item) => item.run_id === run.svixId).length;
      if (listed !== broken.size || (status?.heldBack ?? 0) !== broken.size) {
        lost.push(`${label}: ${broken.size} records sent breaking the schema, ${status?.heldBack ?? 0} held back, ${listed} listed`);
      }
    }

    // The 401 phase: every backfill that waited for the API key went on once it was fixed, and completed.
    for (const waited of waitedForKey.values()) {
      const status = await pipeline.statuses.get(waited);
      if (status?.state !== 'completed') lost.push(`backfill ${waited.resource} of ${waited.userId} waited for the API key (run ${waited.waitingRunId}), then ended ${status?.state}`);
    }

    // Workout streams: every announced workout's stream is in S3 (read through the project's store),
    // exactly as the API serves it, ordered after every notice; the newest notice is the stored notice record. Every notice
    // predates every fetch (the storm's ids are from 2024), so one fetch per workout is enough: more
    // than one happens only when a second job message of the workout runs before the first has
    // stored its fetch (at most one per job). Fetches are counted as the backfill received them whole.
    pipeline.fake.setFaults({});
    const servedStreams = new Map<string, Set<string>>();
    for (const [key, ids] of pipeline.fake.counters.served) {
      if (key.endsWith('/workout_stream')) servedStreams.set(key.slice(0, -'/workout_stream'.length), new Set(ids));
    }
    const fetchesOf = (workoutId: string) => pipeline.streamFetches.get(workoutId) ?? 0;
    const announcedStreams = new Map<string, Set<string>>();
    let streamFetches = 0;
    let streamNotices = 0;
    for (const expected of oracle.streams.values()) {
      recordsChecked += 1;
      streamNotices += expected.notices.length;
      announcedStreams.set(expected.userId, new Set([...(announcedStreams.get(expected.userId) ?? []), expected.workoutId]));
      const label = `stream of workout ${expected.workoutId} (${expected.userId})`;
      const fetches = fetchesOf(expected.workoutId);
      const jobs = pipeline.streamJobs.get(expected.workoutId) ?? 0;
      streamFetches += fetches;
      if (fetches < 1 || fetches > jobs) lost.push(`${label}: fetched ${fetches} times for ${jobs} job messages and ${expected.notices.length} notices`);
      const differs = await streamDiffers(expected.userId, expected.provider, expected.workoutId);
      if (differs) lost.push(`${label}: ${differs}`);
      const order = await pipeline.streams.orderOf(expected.userId, expected.provider, expected.workoutId);
      const newestNoticeSeconds = Math.max(...expected.notices.map((svixId) => messageCreatedAtMs(svixId)! / 1000));
      if (order && (!/^\d{10}\.f\d{3}$/.test(order) || secondsOfOrder(order) < newestNoticeSeconds)) lost.push(`${label}: order ${order} is not a fetch after the notices`);
      const notice = await pipeline.records.getSummary(expected.userId, 'workout_stream', expected.workoutId);
      if (!notice || !isDeepStrictEqual(notice.object, expected.newest)) lost.push(`${label}: the stored notice is not the newest`);
    }
    // Workout history: every workout a workouts backfill listed readable has its stream in S3 as the
    // API serves it (one listed breaking the schema has its stream fetched when it has an id), though
    // the API answered some of those requests 429 with Retry-After.
    const historyStreams = new Map<string, ReturnType<typeof heldByApi>>();
    for (const backfill of oracle.backfills.values()) {
      if (backfill.resource !== 'workouts') continue;
      const held = heldByApi(backfill, backfill.runs.at(-1)!);
      historyStreams.set(backfill.userId, held);
      for (const workoutId of held.readable) {
        recordsChecked += 1;
        const differs = await streamDiffers(backfill.userId, backfill.provider, workoutId);
        if (differs) lost.push(`stream of backfilled workout ${workoutId} (${backfill.userId}): ${differs}`);
      }
    }
    // The API served the streams of the announced and backfilled workouts, per user, and no others.
    for (const userId of new Set([...servedStreams.keys(), ...announcedStreams.keys(), ...historyStreams.keys()])) {
      const served = servedStreams.get(userId) ?? new Set<string>();
      const due = [...(announcedStreams.get(userId) ?? []), ...(historyStreams.get(userId)?.readable ?? [])];
      const allowed = new Set([...due, ...(historyStreams.get(userId)?.broken ?? [])]);
      for (const workoutId of due) if (!served.has(workoutId)) lost.push(`stream of workout ${workoutId} (${userId}): never served`);
      for (const workoutId of served) if (!allowed.has(workoutId)) lost.push(`stream of workout ${workoutId} (${userId}): served, but neither announced nor backfilled`);
    }

    // Claim-checked bodies: exactly the bodies past 1 MiB went through S3 (their samples are checked
    // with every other sample above).
    const parked = new Set((await pipeline.listObjects('raw-bodies/')).map(svixIdOfKey));
    assert.deepEqual(parked, new Set(oracle.claimChecked), 'the bodies past 1 MiB, and only they, were claim-checked');

    // Another team's events: acknowledged, each one kept verbatim under quarantine/, none stored.
    const quarantined = new Map<string, string>();
    for (const key of await pipeline.listObjects('quarantine/')) quarantined.set(svixIdOfKey(key), key);
    assert.deepEqual(new Set(quarantined.keys()), new Set(oracle.foreign.keys()), 'every foreign event, and only they, is in quarantine');
    for (const [svixId, message] of oracle.foreign) {
      recordsChecked += 1;
      const object = await pipeline.getObject(quarantined.get(svixId)!);
      if (object?.body !== message.body || object.metadata.reason !== 'foreign_team') lost.push(`foreign ${svixId}: quarantined copy differs`);
      const { envelope } = message;
      const resource = envelope.event_type.split('.')[2]!;
      const provider = String((envelope.data.source as { provider?: string } | undefined)?.provider ?? (envelope.data.provider as { slug?: string })?.slug ?? envelope.data.provider);
      const stored =
        (await pipeline.records.getSummary(envelope.user_id, resource, String(envelope.data.id))) ??
        (await pipeline.records.readTimeseries(envelope.user_id, resource, MAY)).samples[0] ??
        (await pipeline.connections.get(envelope.user_id, provider)) ??
        (await pipeline.statuses.get({ userId: envelope.user_id, provider, resource }));
      if (stored) lost.push(`foreign ${svixId} (${envelope.event_type}) was stored as data`);
    }

    // Events of types no catalogue knows: acknowledged, each one kept verbatim under unrecognised/
    // and listed by `inspect unrecognised` (for a replay once the catalogue knows the type).
    const keptUnrecognised = new Map<string, string>();
    for (const key of await pipeline.listObjects(BUCKET.prefixes.unrecognised)) keptUnrecognised.set(svixIdOfKey(key), key);
    const listedUnrecognised = new Map(unrecognisedListed.map((item) => [item.svix_id, item]));
    for (const [svixId, message] of oracle.unrecognised) {
      recordsChecked += 1;
      const object = keptUnrecognised.has(svixId) ? await pipeline.getObject(keptUnrecognised.get(svixId)!) : undefined;
      if (object?.body !== message.body) lost.push(`unrecognised ${svixId} (${message.eventType}): ${object ? 'kept copy differs' : 'not kept'}`);
      if (listedUnrecognised.get(svixId)?.event_type !== message.eventType) lost.push(`unrecognised ${svixId} (${message.eventType}): not listed`);
    }
    for (const svixId of new Set([...keptUnrecognised.keys(), ...listedUnrecognised.keys()])) {
      if (!oracle.unrecognised.has(svixId)) lost.push(`${svixId} kept as unrecognised, but its type is known`);
    }

    // The events DLQ holds the poison messages and nothing else.
    const dead = await pipeline.drain(queues.events.deadLetterUrl);
    const deadIds = dead.map((message) => message.MessageAttributes?.[ATTRIBUTE.svixId]?.StringValue ?? '(none)');
    for (const id of deadIds) if (!oracle.poisonIds.has(id)) lost.push(`non-poison message ${id} in the DLQ`);
    assert.deepEqual(new Set(deadIds), new Set(oracle.poisonIds), 'the DLQ holds every planted poison message');
    // A copy that arrives while another invocation processes the same svix-id is acknowledged (that
    // other copy stays queued until it succeeds or reaches the DLQ), so the DLQ holds at least one
    // copy of each poison message and at most every queued copy.
    assert.ok(dead.length >= oracle.poisonIds.size && dead.length <= poisonCopies, `DLQ holds ${dead.length} copies of ${poisonCopies} queued`);
    assert.deepEqual(await pipeline.drain(queues.backfill.deadLetterUrl), [], 'the backfill DLQ is empty');

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
        } else if (claim.kind === 'historical') {
          // A key announced twice: its newest run must be the one completed (checked below).
          if (oracle.backfills.get(`${claim.userId}|${claim.provider}|${claim.resource}`)!.runs.length > 1) continue;
          const status = await pipeline.statuses.get(claim);
          if (status?.runId !== svixId || status.state !== 'completed') lost.push(`accepted ${svixId}: backfill run not completed`);
        } else if (claim.kind === 'stream') {
          const order = await pipeline.streams.orderOf(claim.userId, claim.provider, claim.workoutId);
          if (!order || secondsOfOrder(order) < messageCreatedAtMs(svixId)! / 1000) lost.push(`accepted ${svixId}: stream not stored`);
        } else if (claim.kind === 'unrecognised') {
          if (!keptUnrecognised.has(svixId)) lost.push(`accepted ${svixId}: unknown type, body not kept`);
        } else if (!quarantined.has(svixId)) {
          lost.push(`accepted ${svixId}: not quarantined`);
        }
      }
    }
    const acceptedIds = new Set(report.accepted.keys());
    for (const message of storm.messages) if (!acceptedIds.has(message.svixId)) lost.push(`${message.svixId} never accepted`);

    const enqueuedTotal = [...pipeline.enqueued.values()].reduce((sum, count) => sum + count, 0);
    const delivered = [...report.accepted.values()].reduce((sum, count) => sum + count, 0);
    const { faults } = pipeline;
    const vitalTransient = pipeline.vitalTransientFaults();
    const vitalKeyRejections = pipeline.fake.counters.byStatus.get(401) ?? 0;
    const vitalBrokenRecords = [...pipeline.fake.counters.broken.values()].reduce((sum, identities) => sum + identities.size, 0);
    const faultTotal =
      faults.eventsSendFailures + faults.eventsSendLostAnswers + faults.backfillSendFailures + faults.dynamoThrottlesRetried +
      faults.dynamoThrottlesSurfaced + faults.workerCrashes + vitalTransient + faults.vitalTimeouts + vitalKeyRejections + vitalBrokenRecords;
    console.log(
      `storm: messages=${storm.messages.length} deliveries=${storm.deliveries.length} attempts=${report.attempts} ` +
        `refused_503=${report.refused.get(503) ?? 0} out_of_order_identities=${storm.inversions} poison=${oracle.poisonIds.size} ` +
        `backfills=${storm.historical.length} backfill_sends=${pipeline.backfillSends()} vital_requests=${pipeline.fake.counters.requests} seconds=${((Date.now() - started) / 1000).toFixed(1)}`,
    );
    console.log(
      `storm: claim_checked=${parked.size} (${oracle.claimChecked.size} bodies of ${LARGE_BATCH_SAMPLES} samples) ` +
        `streams=${oracle.streams.size} stream_notices=${streamNotices} stream_jobs=${[...pipeline.streamJobs.values()].reduce((sum, count) => sum + count, 0)} stream_fetches=${streamFetches} ` +
        `repeated_backfills=${[...oracle.backfills.values()].filter((backfill) => backfill.runs.length > 1).length} (newer first: ${storm.historicalInversions.length}) ` +
        `rotations=1 rotated_at=${storm.rotationAt}/${storm.deliveries.length} secret_reads=${pipeline.signingSecretReads.length} refused_401=${refusedForSignature.length} ` +
        `accepted_after_rotation old=${lateOld} both=${acceptedAfterRotation('both')} new=${acceptedAfterRotation('new')} ` +
        `quarantined=${quarantined.size} unrecognised=${keptUnrecognised.size} held_back=${heldBackListed.length} workout_histories=${historyStreams.size} ` +
        `waited_for_api_key=${waitedForKey.size} retry_after_waits=${pipeline.retryAfterWaits.all} (workout streams: ${pipeline.retryAfterWaits.workoutStreams})`,
    );
    console.log(
      `storm: faults sqs_send=${faults.eventsSendFailures} sqs_lost_answer=${faults.eventsSendLostAnswers} ` +
        `backfill_send=${faults.backfillSendFailures} dynamo_throttle_sdk_retried=${faults.dynamoThrottlesRetried} ` +
        `dynamo_throttle_surfaced=${faults.dynamoThrottlesSurfaced} worker_crash=${faults.workerCrashes} ` +
        `vital_429_503=${vitalTransient} vital_timeout=${faults.vitalTimeouts} vital_401=${vitalKeyRejections} vital_broken_records=${vitalBrokenRecords}`,
    );
    for (const line of lost.slice(0, 20)) console.log(`storm: LOST ${line}`);
    console.log(
      `storm: delivered=${delivered} duplicates=${enqueuedTotal - pipeline.enqueued.size} faults=${faultTotal} ` +
        `records_checked=${recordsChecked} lost=${lost.length}`,
    );
    assert.deepEqual(lost, [], 'nothing lost, nothing doubled, nothing stale');
    // Every boundary was hit (a tiny storm may be too small to hit them all).
    if (SIZE >= 6) {
      const kinds = { ...faults, vitalTransient, retryAfterWaits: pipeline.retryAfterWaits.all, heldBack: heldBackListed.length, backfillsWaitingForKey: waitedForKey.size };
      for (const [kind, count] of Object.entries(kinds)) assert.ok(count > 0, `fault ${kind} was injected at least once`);
    }
  });

  it('a second historical event for the same key: the newest run completes and its range is stored, each record once', async () => {
    assert.ok(report, 'runs after the storm');
    const target = await localTarget(pipeline.dataDir);
    const heldBackListed = await inspectHeldBack(target).finally(() => target.close());
    const problems: string[] = [];
    for (const backfill of oracle.backfills.values()) {
      if (backfill.runs.length < 2) continue;
      const newest = backfill.runs.at(-1)!;
      const key = `${backfill.userId}|${backfill.provider}|${backfill.resource}`;
      const status = await pipeline.statuses.get(backfill);
      const planned = storm.historicalInversions.includes(key) ? 'newer planned first' : 'older planned first';
      const inverted = `${planned}; accepted: ${backfill.runs.map((run, index) => `run #${index + 1} ${acceptedAt(run.svixId)}`).join(', ')}`;
      if (status?.runId !== newest.svixId || status.state !== 'completed') {
        const which = backfill.runs.findIndex((run) => run.svixId === status?.runId);
        problems.push(`${backfill.resource} of ${backfill.userId} (${inverted}): status is run #${which + 1} of ${backfill.runs.length} (${status?.runId}) ${status?.state}${status?.lastError ? ` (last error: ${status.lastError})` : ''}, range ${status?.startDate}..${status?.endDate}; newest is ${newest.svixId}`);
      }
      // Each run's range is contained in the newest one's, so the newest range is everything; a record
      // sent breaking the schema is held back by whichever run fetched its page.
      const { readable, broken } = heldByApi(backfill, newest);
      for (const problem of compareBackfilled(backfill, readable, await storedInJanuary(backfill.userId, backfill.resource))) problems.push(`${problem} (${inverted})`);
      const runIds = new Set(backfill.runs.map((run) => run.svixId));
      const listed = heldBackListed.filter((item) => runIds.has(item.run_id)).length;
      if (listed < broken.size) problems.push(`${backfill.resource} of ${backfill.userId}: ${broken.size} records sent breaking the schema, ${listed} listed held back (${inverted})`);
    }
    for (const line of problems.slice(0, 20)) console.log(`storm: REPEATED BACKFILL ${line}`);
    assert.deepEqual(problems, [], 'the newest historical event decides the backfill, whatever the arrival order');
  });
});
