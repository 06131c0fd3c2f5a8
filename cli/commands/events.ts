import { DeleteMessageBatchCommand, ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CHANGE_DETAIL_TYPES } from '../../functions/domain/change-event-schemas';
import type { ChangeDetailType } from '../../functions/domain/change-events';
import { CHANGE_EVENTS_FILE } from '../../local/config';
import { changeEventFacts } from '../../local/console-output';
import type { DeliveredEvent } from '../../local/eventbridge-stand-in';
import { PipelineNotRunningError, readPipelineState } from '../../local/pipeline-state';
import { CHANGE_EVENTS_QUEUE_OUTPUT, StackLookupError, type PipelineTarget } from '../target';
import { closeMatches } from '../terminal';

/**
 * `events`: the change events the pipeline published, as they are delivered to a target, read
 * where each kind of pipeline keeps them: the local pipeline's file (`change-events.jsonl` in its
 * data folder, also once it stopped), or a stack's tap queue, which a read consumes (what it shows
 * is deleted, so each event is shown once). `follow` keeps reading until its signal, the way
 * `stripe listen` shows events as they happen. A line shows only what `changeEventFacts` reads
 * from a detail: never a value.
 */

export interface ChangeEventFilter {
  readonly userId?: string;
  readonly detailType?: ChangeDetailType;
}

export interface EventReading {
  readonly filter: ChangeEventFilter;
  /** Keep reading new events until `signal` aborts; otherwise stop at the last one there is. */
  readonly follow: boolean;
  readonly signal: AbortSignal;
  /** Told each event the filter lets through, in the order read. */
  readonly onEvent: (event: DeliveredEvent) => void;
}

/** The detail-type a `--type` names: any case, with hyphens or underscores for spaces (`records-changed`); undefined for none. */
export function detailTypeNamed(name: string): ChangeDetailType | undefined {
  const wanted = name.trim().toLowerCase().replace(/[-_\s]+/g, ' ');
  return CHANGE_DETAIL_TYPES.find((detailType) => detailType.toLowerCase() === wanted);
}

/**
 * The detail-types a mistyped `--type` probably meant: those close to it as a whole, or else those
 * with a word close to one of its words (`recods` → Records Changed).
 */
export function likelyDetailTypes(name: string): string[] {
  const whole = closeMatches(name, CHANGE_DETAIL_TYPES);
  if (whole.length > 0) return whole;
  const typed = name.toLowerCase().split(/[-_\s]+/).filter(Boolean);
  return CHANGE_DETAIL_TYPES.filter((detailType) => detailType.toLowerCase().split(' ').some((word) => typed.some((each) => closeMatches(each, [word]).length > 0)));
}

const passes = (event: DeliveredEvent, filter: ChangeEventFilter): boolean =>
  (filter.userId === undefined || event.detail.user_id === filter.userId) && (filter.detailType === undefined || event['detail-type'] === filter.detailType);

const WIDEST_DETAIL_TYPE = Math.max(...CHANGE_DETAIL_TYPES.map((detailType) => detailType.length));

/** One line per event: time, detail-type, user, provider/resource, time range, counts, svix-id or run. */
export function describeEvent(event: DeliveredEvent): string {
  const { user, subject, range, counts, origin } = changeEventFacts(event);
  return [event.time, event['detail-type'].padEnd(WIDEST_DETAIL_TYPE), `user ${user}`, subject, range, counts, origin].join('  ');
}

/** An event from a line of the file or a message of the queue; undefined for anything else. */
function eventOf(text: string): DeliveredEvent | undefined {
  try {
    const value = JSON.parse(text) as Partial<DeliveredEvent> | null;
    return typeof value?.['detail-type'] === 'string' && typeof value.detail === 'object' && value.detail !== null ? (value as DeliveredEvent) : undefined;
  } catch {
    return undefined;
  }
}

/** The change-event file of the local pipeline of `dataDir`: its state's while it runs, else the one it keeps there. */
export async function localEventsFile(dataDir: string): Promise<string> {
  try {
    return (await readPipelineState(dataDir)).changeEvents.file;
  } catch (error) {
    if (error instanceof PipelineNotRunningError) return path.join(dataDir, CHANGE_EVENTS_FILE);
    throw error;
  }
}

/** How often a followed file is looked at for new lines. */
const FOLLOW_INTERVAL_MS = 200;

/**
 * Reads the events of `file` (none while it does not exist), then with `follow` those appended to
 * it, until `signal`. Only whole lines are read: the line being written is taken at the next look.
 * Resolves to how many events passed the filter.
 */
export async function readEventFile(file: string, reading: EventReading): Promise<number> {
  let offset = 0;
  let partial = Buffer.alloc(0);
  let shown = 0;
  for (;;) {
    const handle = await open(file, 'r').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined;
      throw error;
    });
    if (handle) {
      try {
        const { size } = await handle.stat();
        // A file smaller than what was read is a new one (the data folder was cleared): from its start.
        if (size < offset) [offset, partial] = [0, Buffer.alloc(0)];
        const { buffer, bytesRead } = await handle.read(Buffer.alloc(size - offset), 0, size - offset, offset);
        offset += bytesRead;
        const text = Buffer.concat([partial, buffer.subarray(0, bytesRead)]);
        // A newline byte is never inside a UTF-8 character, so splitting bytes there is safe.
        const end = text.lastIndexOf(0x0a) + 1;
        partial = Buffer.from(text.subarray(end));
        for (const line of text.subarray(0, end).toString('utf8').split('\n')) {
          const event = eventOf(line);
          if (event && passes(event, reading.filter)) {
            reading.onEvent(event);
            shown += 1;
          }
        }
      } finally {
        await handle.close();
      }
    }
    if (!reading.follow || reading.signal.aborted) return shown;
    await sleep(FOLLOW_INTERVAL_MS, undefined, { signal: reading.signal }).catch(() => undefined);
    if (reading.signal.aborted) return shown;
  }
}

/** The stack's tap queue; `StackLookupError` for a stack deployed before it had one. */
export function tapQueueOf(target: PipelineTarget): string {
  if (target.changeEventsQueueUrl) return target.changeEventsQueueUrl;
  throw new StackLookupError(`${target.description} has no output ${CHANGE_EVENTS_QUEUE_OUTPUT}: deploy this version of the pipeline to it to get its change events`);
}

/**
 * Reads the events of a tap queue with long polling and deletes those it showed; without `follow`
 * it stops at the first receive that finds nothing new. Events the filter leaves out stay in the
 * queue for another read (back once their visibility timeout passes, when this read may meet them
 * again). Resolves to how many events passed the filter.
 */
export async function readEventQueue(sqs: SQSClient, queueUrl: string, reading: EventReading): Promise<number> {
  let shownInAll = 0;
  const seen = new Set<string>();
  while (!reading.signal.aborted) {
    let messages;
    try {
      // Following, each receive waits the longest SQS allows; otherwise briefly, to find the queue empty soon.
      const receive = new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: reading.follow ? 20 : 1 });
      messages = (await sqs.send(receive, { abortSignal: reading.signal })).Messages ?? [];
    } catch (error) {
      if (reading.signal.aborted) break;
      throw error;
    }
    const fresh = messages.filter((message) => !seen.has(message.MessageId!));
    if (fresh.length === 0 && !reading.follow) break;
    for (const message of fresh) seen.add(message.MessageId!);
    const shown = messages.filter((message) => {
      const event = eventOf(message.Body ?? '');
      if (!event || !passes(event, reading.filter)) return false;
      reading.onEvent(event);
      return true;
    });
    shownInAll += shown.length;
    // Deleted only once shown; one that fails to delete is shown again by a later read, never lost.
    if (shown.length > 0) {
      await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: shown.map((message, index) => ({ Id: String(index), ReceiptHandle: message.ReceiptHandle! })) }));
    }
  }
  return shownInAll;
}
