import type { PutEventsRequestEntry, PutEventsResultEntry } from '@aws-sdk/client-eventbridge';
import { randomUUID } from 'node:crypto';
import { appendFile, mkdir } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import path from 'node:path';
import { PUT_EVENTS_MAX_ENTRIES, PUT_EVENTS_SIZE_LIMIT, putEventsEntrySize } from '../functions/adapters/change-event-publisher';
import { signerOf, type AccessEvaluator } from './aws-access';
import { LOCAL_AWS, type RunningStandIn } from './stand-ins';
import { LOCAL_ACCOUNT } from './synthesized-access';

/**
 * EventBridge for the local pipeline and the tests: one event bus, in this process, on loopback,
 * answering `AWSEvents.PutEvents` (AWS JSON 1.1) and nothing else. Each accepted entry becomes an
 * event in the shape EventBridge delivers to a rule's targets, appended as one JSON line to
 * `eventsFile` (before the call is answered, so an accepted event is kept) and handed to `onEvent`.
 *
 * As strict as EventBridge where the publisher depends on it: 1 to 10 entries per call and entries
 * totalling less than 256 KB (EventBridge's own measure, `putEventsEntrySize`), else the whole call
 * fails with ValidationException; per entry `Source`, `DetailType` and `Detail` are required
 * (InvalidArgument) and `Detail` must be a JSON object (MalformedDetail), answered in `Entries`
 * with `FailedEntryCount` as EventBridge does. Stricter in one place on purpose: a call naming a bus
 * other than its own fails with ResourceNotFoundException, where EventBridge accepts events for a
 * bus that does not exist and drops them (aws/aws-sdk#186), so a wrong bus shows here.
 *
 * Once `enforce` is given the stack's access model, a call signed with a function's credentials
 * needs `events:PutEvents` on each bus it names, as in AWS (AccessDeniedException otherwise).
 *
 * Faults for tests: entries failed with a code of EventBridge's choosing (`failEntries`,
 * `failNext`), and whole calls failed with throttling or an internal error (`failNextCalls`).
 */

/** An event as EventBridge delivers it to a target (an SQS queue, a Lambda function, an archive). */
export interface DeliveredEvent {
  readonly version: '0';
  readonly id: string;
  readonly 'detail-type': string;
  readonly source: string;
  readonly account: string;
  /** Whole seconds, UTC: `2026-05-14T12:00:01Z`. */
  readonly time: string;
  readonly region: string;
  readonly resources: readonly string[];
  readonly detail: Record<string, unknown>;
}

/** Per-entry error codes EventBridge answers with (PutEventsResultEntry), for `failEntries`. */
export type EntryErrorCode =
  | 'InternalFailure'
  | 'ThrottlingException'
  | 'AccessDeniedException'
  | 'InvalidArgument'
  | 'MalformedDetail'
  | 'NotAuthorizedForSourceException'
  | 'NotAuthorizedForDetailTypeException';

/** A whole call failing, as EventBridge fails one: throttled (400), or an internal error (500). */
export type CallFault = 'ThrottlingException' | 'InternalException';

/** One entry as a fault hook sees it: valid, about to be accepted. */
export interface ArrivingEntry {
  readonly source: string;
  readonly detailType: string;
  readonly detail: Record<string, unknown>;
}

/** One `PutEvents` call that reached the checks of the bus: its entries, their size, and how many were accepted. */
export interface PutEventsCall {
  readonly entries: number;
  /** `putEventsEntrySize` summed over the entries. */
  readonly bytes: number;
  readonly accepted: number;
}

export interface EventBridgeStandInOptions {
  /** The bus's name; the ARN `arn:aws:events:<region>:<account>:event-bus/<name>` names it too. */
  readonly busName: string;
  /** Where accepted events are appended, one JSON line each (the folder is created). */
  readonly eventsFile: string;
  /** The port on 127.0.0.1. @default 0 (a free one) */
  readonly port?: number;
  /** Told each accepted event, once it is in `eventsFile`. */
  readonly onEvent?: (event: DeliveredEvent) => void;
}

export interface RunningEventBridge extends RunningStandIn {
  readonly busName: string;
  readonly busArn: string;
  /** Every `PutEvents` call that got past the request checks (or a call fault), in order. */
  readonly calls: readonly PutEventsCall[];
  /** From now on, fails each entry `decide` gives a code for (undefined: none). */
  failEntries(decide: ((entry: ArrivingEntry) => EntryErrorCode | undefined) | undefined): void;
  /** Fails the next `count` valid entries with `code`. */
  failNext(count: number, code: EntryErrorCode): void;
  /** Fails the next `count` calls as a whole with `fault`. */
  failNextCalls(count: number, fault: CallFault): void;
}

/** A JSON 1.1 error as the SDK reads it: `__type` and `message` in the body, the type in a header too. */
function sendError(response: ServerResponse, status: number, type: string, message: string): void {
  response.writeHead(status, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': randomUUID(), 'x-amzn-errortype': type });
  response.end(JSON.stringify({ __type: type, message }));
}

class RequestError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** The entry's `Detail` as an object, or the code and message EventBridge fails the entry with. */
function checkEntry(entry: PutEventsRequestEntry): { detail: Record<string, unknown> } | { code: EntryErrorCode; message: string } {
  for (const field of ['Source', 'DetailType', 'Detail'] as const) {
    if (typeof entry[field] !== 'string' || entry[field] === '') {
      return { code: 'InvalidArgument', message: `Parameter ${field} is not valid. Reason: ${field} is a required argument.` };
    }
  }
  try {
    const detail: unknown = JSON.parse(entry.Detail!);
    if (isObject(detail)) return { detail };
  } catch {
    // Not JSON: malformed, as below.
  }
  return { code: 'MalformedDetail', message: 'Detail is malformed.' };
}

/** Largest request body read; far above what 10 entries under 256 KB can be. */
const MAX_BODY_BYTES = 4 * 1024 * 1024;

async function readBody(request: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of request) {
    length += (chunk as Buffer).length;
    if (length > MAX_BODY_BYTES) throw new RequestError(413, 'RequestEntityTooLargeException', 'Request is too large.');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** Starts the stand-in; resolves once it listens. */
export async function startEventBridge(options: EventBridgeStandInOptions): Promise<RunningEventBridge> {
  const { accountId } = LOCAL_ACCOUNT;
  const { region } = LOCAL_AWS;
  const busArn = `arn:aws:events:${region}:${accountId}:event-bus/${options.busName}`;
  const calls: PutEventsCall[] = [];
  let access: AccessEvaluator | undefined;
  let entryFault: ((entry: ArrivingEntry) => EntryErrorCode | undefined) | undefined;
  let failingEntries: { count: number; code: EntryErrorCode } = { count: 0, code: 'InternalFailure' };
  let failingCalls: { count: number; fault: CallFault } = { count: 0, fault: 'ThrottlingException' };
  /** Appends in order, one call's lines at a time, so lines of concurrent calls never interleave. */
  let appended: Promise<void> = mkdir(path.dirname(options.eventsFile), { recursive: true }).then(() => undefined);

  const faultOf = (entry: ArrivingEntry): EntryErrorCode | undefined => {
    if (failingEntries.count > 0) {
      failingEntries.count -= 1;
      return failingEntries.code;
    }
    return entryFault?.(entry);
  };

  const busArnOf = (bus: string): string => (bus.startsWith('arn:') ? bus : `arn:aws:events:${region}:${accountId}:event-bus/${bus}`);

  const putEvents = async (body: Record<string, unknown>, accessKeyId: string): Promise<{ FailedEntryCount: number; Entries: PutEventsResultEntry[] }> => {
    const entries = body.Entries;
    if (!Array.isArray(entries) || entries.length < 1 || entries.length > PUT_EVENTS_MAX_ENTRIES) {
      const constraint = Array.isArray(entries) && entries.length > 0 ? `less than or equal to ${PUT_EVENTS_MAX_ENTRIES}` : 'greater than or equal to 1';
      throw new RequestError(400, 'ValidationException', `1 validation error detected: Value at 'entries' failed to satisfy constraint: Member must have length ${constraint}`);
    }
    const requestEntries = entries.map((entry: unknown) => (isObject(entry) ? entry : {})) as PutEventsRequestEntry[];
    if (access?.governs(accessKeyId)) {
      const buses = [...new Set(requestEntries.map((entry) => busArnOf(entry.EventBusName ?? 'default')))];
      const decision = await access.decide(accessKeyId, buses.map((resource) => ({ action: 'events:PutEvents', resource })));
      if (!decision.allowed) throw new RequestError(400, 'AccessDeniedException', decision.message);
    }
    for (const entry of requestEntries) {
      const bus = entry.EventBusName ?? 'default';
      if (bus !== options.busName && bus !== busArn) throw new RequestError(400, 'ResourceNotFoundException', `Event bus ${bus} does not exist.`);
    }
    const bytes = requestEntries.reduce((sum, entry) => sum + putEventsEntrySize(entry), 0);
    if (bytes >= PUT_EVENTS_SIZE_LIMIT) throw new RequestError(400, 'ValidationException', 'Total size of the entries in the request is over the limit.');
    if (failingCalls.count > 0) {
      failingCalls.count -= 1;
      calls.push({ entries: requestEntries.length, bytes, accepted: 0 });
      throw failingCalls.fault === 'ThrottlingException'
        ? new RequestError(400, 'ThrottlingException', 'Rate exceeded.')
        : new RequestError(500, 'InternalException', 'An internal error occurred.');
    }
    const time = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
    const delivered: DeliveredEvent[] = [];
    const results = requestEntries.map((entry): PutEventsResultEntry => {
      const checked = checkEntry(entry);
      if ('code' in checked) return { ErrorCode: checked.code, ErrorMessage: checked.message };
      const fault = faultOf({ source: entry.Source!, detailType: entry.DetailType!, detail: checked.detail });
      if (fault) return { ErrorCode: fault, ErrorMessage: `Fault injected by the test: ${fault}` };
      const event: DeliveredEvent = {
        version: '0',
        id: randomUUID(),
        'detail-type': entry.DetailType!,
        source: entry.Source!,
        account: accountId,
        // JSON 1.1 carries a Time as epoch seconds.
        time: entry.Time === undefined ? time : new Date(Number(entry.Time) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z'),
        region,
        resources: entry.Resources ?? [],
        detail: checked.detail,
      };
      delivered.push(event);
      return { EventId: event.id };
    });
    calls.push({ entries: requestEntries.length, bytes, accepted: delivered.length });
    if (delivered.length > 0) {
      const lines = delivered.map((event) => `${JSON.stringify(event)}\n`).join('');
      const written = appended.then(() => appendFile(options.eventsFile, lines));
      // A failed write fails this call (500: retried), not the ones after it.
      appended = written.catch(() => undefined);
      await written;
      for (const event of delivered) options.onEvent?.(event);
    }
    return { FailedEntryCount: results.filter((result) => result.ErrorCode).length, Entries: results };
  };

  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    try {
      const body = await readBody(request);
      const signer = signerOf(request.headers);
      if (!signer) throw new RequestError(400, 'MissingAuthenticationTokenException', 'Missing Authentication Token');
      if (signer.service !== 'events') throw new RequestError(400, 'InvalidSignatureException', `Credential should be scoped to correct service: 'events'.`);
      const target = String(request.headers['x-amz-target'] ?? '');
      if (request.method !== 'POST' || target !== 'AWSEvents.PutEvents') {
        throw new RequestError(400, 'UnknownOperationException', `The operation ${target || '(none)'} is not served by this stand-in, which takes AWSEvents.PutEvents only.`);
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(body.toString('utf8'));
      } catch {
        throw new RequestError(400, 'SerializationException', 'The request body is not JSON.');
      }
      const answer = await putEvents(isObject(parsed) ? parsed : {}, signer.accessKeyId);
      response.writeHead(200, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': randomUUID() });
      response.end(JSON.stringify(answer));
    } catch (error) {
      if (error instanceof RequestError) sendError(response, error.status, error.type, error.message);
      else sendError(response, 500, 'InternalException', (error as Error).message);
    }
  };

  await appended;
  const server = createServer((request, response) => void handle(request, response));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as { port: number };
  return {
    endpoint: `http://127.0.0.1:${port}`,
    busName: options.busName,
    busArn,
    calls,
    enforce: (model) => {
      access = model;
    },
    failEntries: (decide) => {
      entryFault = decide;
    },
    failNext: (count, code) => {
      failingEntries = { count, code };
    },
    failNextCalls: (count, fault) => {
      failingCalls = { count, fault };
    },
    stop: async () => {
      await new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
      await appended;
    },
  };
}
