import { InvalidBackfillRangeError } from './backfill-plan';
import { VitalApiError } from './backfill-source';

/**
 * The one rule for what a failure means to a backfill job. Every answer of the Data Access API that
 * is not a usable 2xx, and every error a backfill step meets, falls in exactly one class, decided
 * here and nowhere else (the API client picks its error class from `classifyVitalAnswer`, the runner
 * acts on `classifyBackfillError`):
 *
 * | class | meaning | what the job does |
 * |---|---|---|
 * | `transient` | asking again later can succeed on its own | status keeps its checkpoint, SQS redelivers the message |
 * | `waiting_for_api_key` | the team API key is missing or rejected: only the operator can fix it, and nothing is wrong with the job | status `waiting_for_api_key`, the job is sent again with a long delay, until it works or `API_KEY_MAX_WAIT_MS` passes |
 * | `permanent` | the same request gets the same answer | status `failed` with the reason |
 */

export type BackfillFailureClass = 'transient' | 'waiting_for_api_key' | 'permanent';

/** A Data Access API answer that was not a usable 2xx, or the lack of one. */
export type VitalAnswer =
  /** Network failure or timeout: no status at all. */
  | { readonly kind: 'no_response' }
  /** A 2xx whose body is not JSON or not the documented shape. */
  | { readonly kind: 'malformed' }
  /** A status other than 2xx; `body` is read only to recognise an authentication failure, never kept or logged. */
  | { readonly kind: 'http'; readonly status: number; readonly body?: string };

/**
 * A 403 body that says the credentials are at fault. Vital documents no bad-key answer: it is 401 in
 * practice (`{"detail": "invalid token"}` has been seen; the fake API answers `Invalid API key`), but
 * FastAPI-style services answer 403 `Not authenticated` for a missing or unreadable key, so a 403 that
 * names the key, a token or the credentials waits for the key too; any other 403 is a refusal.
 */
const CREDENTIALS_AT_FAULT = /api[\s_-]?key|token|credential|authenticat/i;

/** The `detail` (FastAPI) or `error_message`/`error_type` (Vital's documented error schema) of a body. */
function errorText(body: string | undefined): string {
  if (!body) return '';
  try {
    const parsed = JSON.parse(body) as Record<string, unknown> | null;
    if (typeof parsed !== 'object' || parsed === null) return '';
    return [parsed.detail, parsed.error_message, parsed.error_type, parsed.message].filter((part) => typeof part === 'string').join(' ');
  } catch {
    return '';
  }
}

/**
 * Classifies one answer of the Data Access API.
 * - no answer (network, timeout): transient
 * - 401: waiting for the API key (a placeholder, a key of another team, region or environment, a revoked key)
 * - 403 whose error names the key, a token or the credentials: waiting for the API key; other 403: permanent
 * - 408, 429, every 5xx: transient (Vital sheds load with 429 and 503)
 * - every other 4xx (404, 422 ...): permanent
 * - a 2xx that is not the documented shape: permanent (better loud than storing garbage)
 * - anything else (an unfollowed 3xx, 1xx): permanent
 */
export function classifyVitalAnswer(answer: VitalAnswer): BackfillFailureClass {
  switch (answer.kind) {
    case 'no_response':
      return 'transient';
    case 'malformed':
      return 'permanent';
    case 'http': {
      const { status } = answer;
      if (status === 401) return 'waiting_for_api_key';
      if (status === 403) return CREDENTIALS_AT_FAULT.test(errorText(answer.body)) ? 'waiting_for_api_key' : 'permanent';
      if (status === 408 || status === 429 || (status >= 500 && status <= 599)) return 'transient';
      return 'permanent';
    }
  }
}

/**
 * Classifies whatever a backfill step threw: an API error by the class its answer was given, an
 * unreadable range as permanent, and anything else (DynamoDB, S3 or SQS errors, a crash) as transient,
 * so that SQS tries again and, after `maxReceiveCount`, keeps the job in the dead-letter queue.
 */
export function classifyBackfillError(error: unknown): BackfillFailureClass {
  if (error instanceof VitalApiError) return error.failureClass;
  if (error instanceof InvalidBackfillRangeError) return 'permanent';
  return 'transient';
}

/** SQS's longest `DelaySeconds`: how long a job waiting for the API key sleeps between two tries. */
export const API_KEY_RETRY_DELAY_SECONDS = 900;

/**
 * How long a job waits for a working API key before it fails with `api_key_never_set`: 14 days, the
 * backfill queue's (and SQS's longest) message retention, so that a job is never kept waiting longer
 * than its dead letter would be kept. Every re-send is a new message, so retention alone would not
 * end the wait: the status item's `waitingSince` does.
 */
export const API_KEY_MAX_WAIT_MS = 14 * 24 * 3_600_000;

/** The waiting delay at a time scale (tests, `--fast-retries`): whole seconds, at least SQS's 1 s. */
export function apiKeyRetryDelaySeconds(timeScale = 1): number {
  return Math.min(API_KEY_RETRY_DELAY_SECONDS, Math.max(1, Math.round(API_KEY_RETRY_DELAY_SECONDS * timeScale)));
}

/** The reason code a run fails with when no working key was stored in time. */
export const API_KEY_NEVER_SET = 'api_key_never_set';

/**
 * Why a run failed when its job message goes to the backfill DLQ: how many deliveries it had and
 * the last error they noted (none when they ran out of time or crashed), and how to resume it.
 */
export function deadLetterReason(receives: number, lastError: string | undefined): string {
  return (
    `gave up after repeated failures (${receives} deliveries without finishing; the job is in the backfill DLQ: ` +
    `vital-pipeline backfill retry, or replay --queue backfill, resumes it from its checkpoint); last error: ` +
    `${lastError ?? 'none recorded (a delivery ran out of time or crashed)'}`
  );
}
