import type { EventBridgeClient, PutEventsRequestEntry } from '@aws-sdk/client-eventbridge';
import { setTimeout as sleep } from 'node:timers/promises';
import { CHANGE_EVENT_SOURCE, type ChangeEvent, type ChangeEventPublisher } from '../domain/change-events';
import { NamedError } from '../domain/named-error';
import { requiredEnv } from '../shared/environment';
import { CHANGE_EVENT_BUS } from '../shared/resources';
import { tracedClient } from '../shared/tracing';

/**
 * Change events onto an EventBridge bus with `PutEvents`. The worker handles a batch's records
 * concurrently and each publishes its own few events, so publishes made within `lingerMs` of each
 * other share calls: a small write-behind batch, each call at most `PUT_EVENTS_MAX_ENTRIES`
 * entries and under `PUT_EVENTS_SIZE_LIMIT` bytes, sent as soon as it is full.
 *
 * Invariant: a `publish` resolves only once EventBridge accepted every one of its events, and
 * otherwise rejects with `ChangeEventsNotPublishedError`, so its caller's message is retried. Another
 * publish sharing a call is unaffected: entries are accounted to their own publish. Entries that
 * EventBridge fails with a retryable code, and calls that fail with throttling, a 5xx or no answer,
 * are retried with jittered exponential backoff, `RETRIES` times at most (under a second in all).
 */

/** Entries one `PutEvents` call takes at most. */
export const PUT_EVENTS_MAX_ENTRIES = 10;
/** The entries of one call must total less than this, measured by `putEventsEntrySize`. */
export const PUT_EVENTS_SIZE_LIMIT = 256 * 1024;

/**
 * The size EventBridge counts an entry as (eb-putevent-size.html): the UTF-8 bytes of `Source`,
 * `DetailType`, `Detail` and each of `Resources`, plus 14 for a `Time`. The bus name does not count.
 */
export function putEventsEntrySize(entry: PutEventsRequestEntry): number {
  const bytes = (text: string | undefined) => (text === undefined ? 0 : Buffer.byteLength(text, 'utf8'));
  return (
    (entry.Time === undefined ? 0 : 14) +
    bytes(entry.Source) +
    bytes(entry.DetailType) +
    bytes(entry.Detail) +
    (entry.Resources ?? []).reduce((sum, resource) => sum + bytes(resource), 0)
  );
}

/** Per-entry error codes EventBridge documents as retryable (PutEventsResultEntry); the others are final. */
const RETRYABLE_ENTRY_CODES: ReadonlySet<string> = new Set(['InternalFailure', 'ThrottlingException']);
/** Failed calls worth another try whatever their status: throttling, and a request that got no answer (timeout, connection lost). */
const TRANSIENT_CALL_ERRORS: ReadonlySet<string> = new Set([
  'ThrottlingException', 'Throttling', 'TooManyRequestsException',
  'TimeoutError', 'RequestTimeout', 'RequestTimeoutException', 'ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT',
]);

/** Retries after the first attempt, and the backoff's base: at most 100 + 200 + 400 ms of waiting. */
const RETRIES = 3;
const BASE_DELAY_MS = 100;

/** Some events of a `publish` were not accepted by EventBridge: how many, and the error codes. Never a detail. */
export class ChangeEventsNotPublishedError extends NamedError {
  constructor(
    readonly failed: number,
    readonly total: number,
    /** Entries not published, by the error code of their last attempt. */
    readonly errorCodes: Readonly<Record<string, number>>,
  ) {
    const codes = Object.entries(errorCodes).map(([code, count]) => `${code} ×${count}`).join(', ');
    super(`${failed} of ${total} change events were not published: ${codes}`);
  }
}

/** One `publish`: settled once each of its entries is accepted or has failed for good. */
class PublishOutcome {
  private unsettled: number;
  private readonly failures: Record<string, number> = {};

  constructor(
    private readonly total: number,
    private readonly resolve: () => void,
    private readonly reject: (error: Error) => void,
  ) {
    this.unsettled = total;
  }

  accepted(): void {
    this.settleOne();
  }

  failed(code: string): void {
    this.failures[code] = (this.failures[code] ?? 0) + 1;
    this.settleOne();
  }

  private settleOne(): void {
    if (--this.unsettled > 0) return;
    const failed = Object.values(this.failures).reduce((sum, count) => sum + count, 0);
    if (failed === 0) this.resolve();
    else this.reject(new ChangeEventsNotPublishedError(failed, this.total, this.failures));
  }
}

interface WaitingEntry {
  readonly entry: PutEventsRequestEntry;
  readonly size: number;
  readonly outcome: PublishOutcome;
}

/** How one entry of a call fared: accepted (no code), or failed with a code, retryable or not. */
type EntryResult = { readonly code?: undefined } | { readonly code: string; readonly retryable: boolean };

export interface EventBridgeChangePublisherOptions {
  /** The bus: its name or ARN. */
  readonly eventBusName: string;
  /**
   * The client, asked for at the first call, so that loading the SDK stays out of a cold start. It
   * makes one attempt per call (`EVENTBRIDGE_CLIENT_SETTINGS`): this publisher does the retrying.
   */
  readonly client: () => Promise<EventBridgeClient>;
  /** How long a publish waits for others to share its call. @default 5 */
  readonly lingerMs?: number;
}

export class EventBridgeChangePublisher implements ChangeEventPublisher {
  private readonly waiting: WaitingEntry[] = [];
  private timer: NodeJS.Timeout | undefined;
  private loadedClient: Promise<EventBridgeClient> | undefined;

  constructor(private readonly options: EventBridgeChangePublisherOptions) {}

  publish(events: readonly ChangeEvent[]): Promise<void> {
    if (events.length === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const outcome = new PublishOutcome(events.length, resolve, reject);
      for (const event of events) {
        const entry: PutEventsRequestEntry = {
          Source: CHANGE_EVENT_SOURCE,
          DetailType: event.detailType,
          Detail: JSON.stringify(event.detail),
          EventBusName: this.options.eventBusName,
        };
        this.waiting.push({ entry, size: putEventsEntrySize(entry), outcome });
      }
      // A full call goes now; the rest waits a moment for publishes close behind.
      for (let count = this.fittingCount(); count < this.waiting.length; count = this.fittingCount()) {
        void this.send(this.waiting.splice(0, count));
      }
      if (this.waiting.length > 0) {
        this.timer ??= setTimeout(() => {
          this.timer = undefined;
          while (this.waiting.length > 0) void this.send(this.waiting.splice(0, this.fittingCount()));
        }, this.options.lingerMs ?? 5);
      }
    });
  }

  /** How many of the waiting entries, from the first, one call takes: at least one, so an entry too large alone is refused by EventBridge, not kept. */
  private fittingCount(): number {
    let size = 0;
    let count = 0;
    for (const waiting of this.waiting) {
      if (count === PUT_EVENTS_MAX_ENTRIES || (count > 0 && size + waiting.size >= PUT_EVENTS_SIZE_LIMIT)) break;
      size += waiting.size;
      count += 1;
    }
    return count;
  }

  /** Sends one call's entries, then the failed ones again while retryable; settles each entry. Never rejects. */
  private async send(batch: WaitingEntry[]): Promise<void> {
    let unsettled = batch;
    for (let attempt = 0; unsettled.length > 0; attempt += 1) {
      const results = await this.putEvents(unsettled.map((waiting) => waiting.entry));
      const retry: WaitingEntry[] = [];
      results.forEach((result, index) => {
        const waiting = unsettled[index]!;
        if (result.code === undefined) waiting.outcome.accepted();
        else if (result.retryable && attempt < RETRIES) retry.push(waiting);
        else waiting.outcome.failed(result.code);
      });
      unsettled = retry;
      // Full jitter: a random wait up to the exponential bound, so retrying publishers spread out.
      if (unsettled.length > 0) await sleep(Math.random() * BASE_DELAY_MS * 2 ** attempt);
    }
  }

  /** One `PutEvents` call: how each entry fared, a failed call counting as each entry failing with its error. */
  private async putEvents(entries: PutEventsRequestEntry[]): Promise<EntryResult[]> {
    try {
      const [client, { PutEventsCommand }] = await Promise.all([
        (this.loadedClient ??= this.options.client().catch((error: unknown) => {
          this.loadedClient = undefined;
          throw error;
        })),
        import('./eventbridge-client'),
      ]);
      const { Entries = [] } = await client.send(new PutEventsCommand({ Entries: entries }));
      return entries.map((_, index) => {
        // EventBridge answers each entry in the request's order; one it left out did not get in.
        const code = Entries[index]?.ErrorCode ?? (Entries[index]?.EventId ? undefined : 'InternalFailure');
        return code === undefined ? {} : { code, retryable: RETRYABLE_ENTRY_CODES.has(code) };
      });
    } catch (error) {
      const failure = callFailure(error);
      return entries.map(() => failure);
    }
  }
}

/** A failed call as each of its entries' result, named by the error's name (or a network error's code): retryable when transient or a 5xx. */
function callFailure(error: unknown): EntryResult {
  const { name, code, $metadata } = error as { name?: string; code?: string; $metadata?: { httpStatusCode?: number } };
  const named = name && name !== 'Error' ? name : (code ?? 'Error');
  const status = $metadata?.httpStatusCode ?? 0;
  return { code: named, retryable: TRANSIENT_CALL_ERRORS.has(named) || status === 429 || status >= 500 };
}

/**
 * The handlers' publisher: onto the bus `CHANGE_EVENT_BUS` names, through the container's shared
 * EventBridge client, which is made (and the SDK loaded) on the first publish.
 */
export function changeEventPublisherFromEnvironment(): ChangeEventPublisher {
  return new EventBridgeChangePublisher({
    eventBusName: requiredEnv(CHANGE_EVENT_BUS.envVar),
    client: async () => tracedClient((await import('./eventbridge-client')).eventBridgeClient()),
  });
}
