import { HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { OrderKey } from '../domain/message-order';
import type { WorkoutStreamStore } from '../domain/backfill-run';
import { BUCKET } from '../shared/resources';

/**
 * Workout streams in S3, one object per workout under `workout-streams/{user}/{provider}/{workout}.json`,
 * body verbatim as the API sent it, the fetch's order key in the object metadata. Always S3, never
 * DynamoDB: a stream of an hour at one point a second is a few hundred KB of JSON, past or near the
 * 400 KB item limit, and streams are written once and read rarely, so one place for all of them is
 * simpler than a size-dependent split. A later fetch overwrites an earlier one: it is the newer state.
 */
export class S3WorkoutStreamStore implements WorkoutStreamStore {
  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
    private readonly prefix: string = BUCKET.prefixes.workoutStreams,
  ) {}

  /** The object key of a workout's stream. */
  keyOf(userId: string, provider: string, workoutId: string): string {
    return `${this.prefix}${encodeURIComponent(userId)}/${encodeURIComponent(provider)}/${encodeURIComponent(workoutId)}.json`;
  }

  async orderOf(userId: string, provider: string, workoutId: string): Promise<OrderKey | undefined> {
    try {
      const head = await this.s3.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.keyOf(userId, provider, workoutId) }));
      return head.Metadata?.order;
    } catch (error) {
      const name = (error as Error).name;
      if (name === 'NotFound' || name === 'NoSuchKey' || (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return undefined;
      throw error;
    }
  }

  async put(input: { userId: string; provider: string; workoutId: string; body: string; order: OrderKey }): Promise<void> {
    await this.s3.send(
      new PutObjectCommand({
        Bucket: this.bucket,
        Key: this.keyOf(input.userId, input.provider, input.workoutId),
        Body: input.body,
        ContentType: 'application/json',
        Metadata: { order: input.order },
      }),
    );
  }
}
