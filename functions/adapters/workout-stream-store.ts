import { HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { OrderKey } from '../domain/message-order';
import type { WorkoutStreamStore } from '../domain/backfill-run';
import { BUCKET } from '../shared/resources';

/**
 * Workout streams in S3, one object per workout under `workout-streams/{user}/{provider}/{workout}.json`,
 * body verbatim as the API sent it, the fetch's order key in the object metadata. Always S3, never
 * DynamoDB: a stream of an hour at one point a second is a few hundred KB of JSON, past or near the
 * 400 KB item limit, and streams are written once and read rarely, so one place for all of them is
 * simpler than a size-dependent split.
 *
 * A newer fetch replaces an older one and never the other way round, however two fetches race: a
 * put is conditional on the object it compared with (`If-Match` its ETag, or `If-None-Match: *`
 * when there was none), so a put that lost the race reads again and compares again.
 *
 * A missing key answers HeadObject with 403, not 404, to a role without `s3:ListBucket` (the
 * backfill has none: it would let it list every prefix). With `s3:GetObject` granted on the prefix,
 * 403 can only mean "no object", and the `If-None-Match: *` put that follows is refused (412) if one
 * appeared; a real permission problem fails that put with 403 too, so nothing is hidden.
 */

/** Puts that lost a race in a row before the store gives up (SQS then retries the job). */
const MAX_CONDITIONAL_ATTEMPTS = 10;

const statusOf = (error: unknown): number | undefined => (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;

/** S3's answers to a conditional put whose condition no longer holds: the object changed, appeared or went away. */
const lostRace = (error: unknown): boolean => {
  const name = (error as Error).name;
  return name === 'PreconditionFailed' || name === 'ConditionalRequestConflict' || name === 'NoSuchKey' || [404, 409, 412].includes(statusOf(error) ?? 0);
};

export class S3WorkoutStreamStore implements WorkoutStreamStore {
  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
    private readonly prefix: string = BUCKET.prefixes.workoutStreams,
  ) {}

  /** Where every stream of a user is kept: the prefix an erasure removes. */
  prefixOf(userId: string): string {
    return `${this.prefix}${encodeURIComponent(userId)}/`;
  }

  /** The object key of a workout's stream. */
  keyOf(userId: string, provider: string, workoutId: string): string {
    return `${this.prefixOf(userId)}${encodeURIComponent(provider)}/${encodeURIComponent(workoutId)}.json`;
  }

  /** The stored stream's order key and ETag; undefined when none is stored (404, or 403 without `s3:ListBucket`). */
  private async head(key: string): Promise<{ order: OrderKey | undefined; etag: string } | undefined> {
    try {
      const head = await this.s3.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return { order: head.Metadata?.order, etag: head.ETag! };
    } catch (error) {
      const status = statusOf(error);
      if (status === 404 || status === 403) return undefined;
      throw error;
    }
  }

  async orderOf(userId: string, provider: string, workoutId: string): Promise<OrderKey | undefined> {
    return (await this.head(this.keyOf(userId, provider, workoutId)))?.order;
  }

  async put(input: { userId: string; provider: string; workoutId: string; body: string; order: OrderKey }): Promise<boolean> {
    const key = this.keyOf(input.userId, input.provider, input.workoutId);
    for (let attempt = 1; ; attempt += 1) {
      const stored = await this.head(key);
      if (stored?.order !== undefined && stored.order >= input.order) return false;
      try {
        await this.s3.send(
          new PutObjectCommand({
            Bucket: this.bucket,
            Key: key,
            Body: input.body,
            ContentType: 'application/json',
            Metadata: { order: input.order },
            ...(stored ? { IfMatch: stored.etag } : { IfNoneMatch: '*' }),
          }),
        );
        return true;
      } catch (error) {
        if (!lostRace(error) || attempt >= MAX_CONDITIONAL_ATTEMPTS) throw error;
      }
    }
  }
}
